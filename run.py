#!/usr/bin/env python3
"""Set up and run stepline with nothing but Python 3.11+:

    python3 run.py demo     # the demo: SQLite + the bundled LINE emulator + the salon flows
    python3 run.py test     # the whole test suite
    python3 run.py <any stepline command>   # e.g. check, serve, db upgrade

It creates `.venv/` and installs the project (with its test tools) the first time and again
whenever pyproject.toml changes, then runs the command inside that environment.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".stepline-installed"


def ensure_environment() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "stepline").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating the virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing stepline and its dependencies (first run only) ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    ensure_environment()
    os.chdir(ROOT)
    if argv[0] == "test":
        command = [str(BIN / "python"), "-m", "pytest", *argv[1:]]
    else:
        command = [str(BIN / "stepline"), *argv]
    return run(command)


def run(command: list[str]) -> int:
    """Run the command and wait for it, through Ctrl-C: the terminal sends it to the whole
    process group, the command stops by itself (the demo says "demo stopped"), and its exit
    status is ours. A SIGINT sent to this process alone (`kill -INT`) is passed on."""
    child = subprocess.Popen(command)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            if not _whole_group_interrupted():
                child.send_signal(signal.SIGINT)


def _whole_group_interrupted() -> bool:
    """Whether the Ctrl-C reached the command too: a terminal sends it to its foreground
    process group, which the command shares with us."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except OSError:  # no terminal: the signal was sent to us only
        return False


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # while installing: stop quietly, as the command would
        print("interrupted", file=sys.stderr)
        sys.exit(130)
