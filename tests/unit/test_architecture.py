"""The floors of the house (docs/architecture.md) hold: import-linter's contracts are kept, a
broken one is caught, the top of `bot/` stays small, and no module reaches for another's
private names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = ("bot", "storage")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run `lint-imports` on the tree at `root` (its own bot/, storage/ and pyproject.toml)."""
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(BIN)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_contract_catches_the_engine_importing_the_outbox(tmp_path: Path) -> None:
    """The engine decides and services write: an engine module that imports the outbox (even
    inside a function) breaks the layers."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "static", "fonts", "spec", "*.json"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "bot" / "engine" / "shortcut.py").write_text(
        '"""An engine module that writes outbox rows itself."""\n\n\n'
        "def queue_now() -> None:\n"
        "    from bot.delivery.outbox import claim\n\n"
        "    claim([], 'owner', None)  # type: ignore[arg-type]\n"
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "bot.engine.shortcut -> bot.delivery.outbox" in result.stdout, result.stdout


def test_the_top_of_bot_holds_only_what_every_floor_shares() -> None:
    modules = sorted(p.name for p in (ROOT / "bot").glob("*.py") if p.name != "__init__.py")
    assert modules == ["clock.py", "config.py", "logging_setup.py", "runtime.py"]


def test_no_module_imports_another_modules_private_names() -> None:
    offences = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.level == 0
                    and (node.module or "").split(".")[0] in PACKAGES
                ):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    if private:
                        offences.append(f"{path.relative_to(ROOT)}: {node.module} {private}")
    assert offences == []


def test_the_engine_writes_no_outbox_rows() -> None:
    """The engine decides what to send (`Turn.outgoing`, `link_menu`, `skipped`); only the
    services write outbox rows (`bot.services.turns.finish_turns`)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bot" / "engine").rglob("*.py")
        if "OutboxMessage" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
