#!/usr/bin/env python3
"""Startup benchmark: how fast stepline's doors open, beside the bare import of its frameworks.

    .venv/bin/python bench/startup.py [--runs 7] [--compare DIR]

`--compare DIR` measures another checkout of stepline (e.g. `git worktree add /tmp/before
6c7dec8`) in the same run, interleaved with this one, so before and after share the machine's
mood. Each tree runs as `python -m bot.cli` with its own directory first on the path.

Each figure is the median wall time of `--runs` fresh processes, measured in the same run as
the baseline (`python -c 'import click, flask'`), so the ratio is what to compare across days:

- `stepline --help`;
- `stepline check --flows flows` (the demo's YAML; a command that never calls LINE);
- a gunicorn worker's boot: `gunicorn wsgi:app` started until `/healthz` answers, beside the
  same gunicorn serving a bare Flask app (`bench.bare_app:app`);
- which heavy modules each command imported (`linebot`, `flask`, `sqlalchemy`, `PIL`), read
  from `-X importtime` in a separate run, so the timing runs are not slowed by it.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEAVY = ("linebot", "flask", "sqlalchemy", "PIL", "transitions", "pydantic")


def env(database: Path, root: Path = ROOT) -> dict[str, str]:
    values = dict(os.environ)
    values.update(
        PYTHONPATH=str(root),
        DATABASE_URL=f"sqlite:///{database}",
        LINE_CHANNEL_SECRET="bench-secret",
        LINE_CHANNEL_ACCESS_TOKEN="bench-token",
        LINE_API_BASE_URL="http://127.0.0.1:9",
        STEPLINE_FLOWS=str(root / "flows"),
        STEPLINE_LOG_LEVEL="WARNING",
    )
    return values


def timed(cmd: list[str], environment: dict[str, str], root: Path = ROOT) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=environment, cwd=root, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def boot(app: str, environment: dict[str, str], root: Path = ROOT) -> float:
    """Seconds from starting gunicorn (1 worker) until `/healthz` answers 200."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", str(root), app],
        env=environment,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.005)
        raise SystemExit(f"{app} did not answer /healthz within 60 s")
    finally:
        proc.terminate()
        proc.wait(10)


def imported(cmd: list[str], environment: dict[str, str], root: Path = ROOT) -> list[str]:
    """Which of the HEAVY top-level packages the command imports."""
    done = subprocess.run(
        cmd, env={**environment, "PYTHONPROFILEIMPORTTIME": "1"}, cwd=root, capture_output=True
    )
    names = set()
    for line in done.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name.split(".")[0] in HEAVY and "." not in name:
                names.add(name)
    return sorted(names)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per figure (median)")
    parser.add_argument("--compare", type=Path, help="another checkout, measured in the same run")
    args = parser.parse_args()
    trees = {"": ROOT} if args.compare is None else {"this": ROOT, "other": args.compare.resolve()}
    python = str(BIN / "python")

    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.db"
        base_env = env(database)
        subprocess.run(
            [python, "-m", "bot.cli", "db", "upgrade", "--no-analyze"],
            env=base_env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        baseline = [python, "-c", "import click, flask"]
        figures: dict[str, list[float]] = {
            "bare import (click, flask)": [],
            "gunicorn boot: bare app": [],
        }
        loads: dict[str, list[str]] = {"bare import (click, flask)": imported(baseline, base_env)}
        commands: dict[str, tuple[list[str], dict[str, str], Path]] = {}
        for label, root in trees.items():
            tree_env = env(database, root)
            cli = [python, "-m", "bot.cli"]
            suffix = f" [{label}]" if label else ""
            commands[f"stepline --help{suffix}"] = ([*cli, "--help"], tree_env, root)
            commands[f"stepline check{suffix}"] = (
                [*cli, "check", "--flows", str(root / "flows")],
                tree_env,
                root,
            )
            figures[f"stepline --help{suffix}"] = []
            figures[f"stepline check{suffix}"] = []
            figures[f"gunicorn boot: wsgi:app{suffix}"] = []
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs} ...", file=sys.stderr, flush=True)
            figures["bare import (click, flask)"].append(timed(baseline, base_env))
            figures["gunicorn boot: bare app"].append(boot("bench.bare_app:app", base_env))
            for name, (cmd, tree_env, root) in commands.items():
                figures[name].append(timed(cmd, tree_env, root))
            for label, root in trees.items():
                suffix = f" [{label}]" if label else ""
                figures[f"gunicorn boot: wsgi:app{suffix}"].append(
                    boot("wsgi:app", env(database, root), root)
                )
        for name, (cmd, tree_env, root) in commands.items():
            loads[name] = imported(cmd, tree_env, root)

    base = median(figures["bare import (click, flask)"])
    bare_boot = median(figures["gunicorn boot: bare app"])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    for label, root in trees.items():
        print(f"[{label or 'this'}] {root}")
    print(f"{'what':38} {'median':>9} {'min':>9} {'ratio':>7}  heavy imports")
    for name, values in figures.items():
        ref = bare_boot if name.startswith("gunicorn") else base
        heavy = ", ".join(loads.get(name, []))
        print(
            f"{name:38} {median(values) * 1000:7.0f}ms {min(values) * 1000:7.0f}ms "
            f"{median(values) / ref:6.1f}×  {heavy}"
        )


if __name__ == "__main__":
    main()
