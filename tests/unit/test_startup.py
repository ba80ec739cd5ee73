"""Doors that open fast: `stepline --help` loads only click, and the commands that never talk
to LINE (`check`, `diagram`, `schema`) never import LINE's SDK (about a second to import).
Timings are measured by bench/startup.py; these tests check what is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from click.testing import CliRunner
from bot.cli import main
result = CliRunner().invoke(main, sys.argv[1:], catch_exceptions=False)
top = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": result.exit_code, "output": result.output, "modules": top}))
"""


def imported_by(*args: str) -> set[str]:
    """The top-level packages a fresh process has imported after running the command."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, report["output"]
    return set(report["modules"])


def test_help_loads_only_click() -> None:
    modules = imported_by("--help")
    assert not modules & {"flask", "sqlalchemy", "linebot", "rich", "pydantic", "jinja2"}


@pytest.mark.parametrize(
    "command",
    [
        ("check", "--flows", "flows"),
        ("diagram", "welcome", "--flows", "flows"),
        ("schema",),
    ],
)
def test_commands_that_never_call_line_do_not_import_its_sdk(command: tuple[str, ...]) -> None:
    modules = imported_by(*command)
    assert "linebot" not in modules
    assert "flask" not in modules
