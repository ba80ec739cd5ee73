"""Broken catalogues: each file (or folder) of `broken/` records the exact problems it must
produce, as `# expect: line:col: message` comments (in the file the problem is in)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.catalogue import CatalogueError
from bot.catalogue.loader import load_catalogue
from tests.unit.catalogue.conftest import BROKEN

EXPECT = re.compile(rb"^# expect: (\d+):(\d+): (.*)$", re.M)
# Files that cannot hold a comment.
NO_COMMENT = {
    "empty_file.yaml": [
        "flows/empty_file.yaml:1:1: the file is empty (expected a document such as 'flow: name')"
    ],
}
CASES = sorted(p.name for p in BROKEN.iterdir() if not p.name.startswith("."))


def expectations(case: Path) -> list[str]:
    if case.name in NO_COMMENT:
        return NO_COMMENT[case.name]
    files = sorted(case.rglob("*.yaml")) if case.is_dir() else [case]
    found = []
    for file in files:
        name = file.relative_to(case).as_posix() if case.is_dir() else file.name
        for line, col, message in EXPECT.findall(file.read_bytes()):
            found.append(f"flows/{name}:{int(line)}:{int(col)}: {message.decode('utf-8')}")
    return sorted(found)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", CASES)
def test_broken_case(name: str, flows: Path) -> None:
    case = BROKEN / name
    if case.is_dir():
        shutil.copytree(case, flows, dirs_exist_ok=True)
    else:
        shutil.copy(case, flows / name)
    expected = expectations(case)
    assert expected, f"{name} records no `# expect:` line"
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(flows)
    assert sorted(str(p) for p in caught.value.problems) == expected


@pytest.mark.parametrize("name", CASES)
def test_broken_case_next_to_the_example(name: str, example: Path) -> None:
    """Among good files a bad one still fails the whole load, with only its own problems."""
    case = BROKEN / name
    target = example / "zz_broken"
    if case.is_dir():
        shutil.copytree(case, target)
    else:
        target.mkdir()
        shutil.copy(case, target / name)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(example)
    files = {p.file for p in caught.value.problems}
    assert files and all(f.startswith("flows/zz_broken/") for f in files)
