"""Fixtures for the catalogue tests: a scratch flows folder (the current directory is moved
into a temporary one, so problems print as `flows/x.yaml:line:col`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "flows"
BROKEN = Path(__file__).parent / "broken"

Write = Callable[[str, str], Path]


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `flows/` folder, relative to the current directory (a temporary one)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEPLINE_FLOWS", raising=False)
    folder = Path("flows")
    folder.mkdir()
    return folder


@pytest.fixture
def write(flows: Path) -> Write:
    """Write a YAML file into the scratch folder: `write("a.yaml", text)`."""

    def put(name: str, text: str) -> Path:
        path = flows / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return put


@pytest.fixture
def example(flows: Path) -> Path:
    """A copy of the example catalogue in the scratch folder."""
    for path in EXAMPLE.glob("*.yaml"):
        shutil.copy(path, flows / path.name)
    return flows
