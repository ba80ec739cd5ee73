"""Bounded YAML: a file over 1 MB, nesting over 100 levels and aliases expanding a document
beyond 200,000 values are located problems, found fast and in little memory; aliases within
the budget load as before; durations and numbers that are not ones are problems too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.catalogue.durations import parse_duration
from bot.catalogue.loader import check_folder, load_catalogue
from bot.catalogue.models import AllCondition, NotCondition
from tests.unit.catalogue.conftest import ROOT, Write


def billion_laughs(levels: int, document: str = "segment: bomb\ncondition: {tag: x}\n") -> str:
    """Nine aliases of nine aliases …: `levels` levels stand for 9**levels values."""
    names = "abcdefghijklmnop"
    lines = [document.rstrip("\n"), "a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def problems_of(folder: Path) -> list[str]:
    catalogue, problems = check_folder(folder)
    assert catalogue is None
    return [str(p) for p in problems]


# ------------------------------------------------------------------ each refused fast, small

# `check_folder` in a process of its own, its address space capped: what it costs in time and
# memory is measured there, and without the bounds it fails (MemoryError, or the timeout)
# instead of eating the machine.
PROBE = textwrap.dedent(
    """
    import resource, sys, time
    from pathlib import Path
    from bot.catalogue.loader import check_folder

    cap = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    catalogue, problems = check_folder(Path(sys.argv[1]))
    print(time.monotonic() - start)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)  # KB
    for problem in problems:
        print(problem)
    """
)


def bomb(folder: Path) -> str:
    # The 9-level billion laughs: 387,420,489 values, a few hundred bytes.
    (folder / "bomb.yaml").write_text(billion_laughs(9), encoding="utf-8")
    return "bomb.yaml:10:4: YAML aliases expand this document to more than 200,000 values"


def huge(folder: Path) -> str:
    with (folder / "huge.yaml").open("w", encoding="utf-8") as out:  # 50 MB of plain YAML
        out.write("tags:\n")
        for _ in range(50):
            out.write("  - tag\n" * (1024 * 1024 // 8))
    return "huge.yaml:1:1: the file is 50.0 MB; a flows file may be at most 1.0 MB"


def deep(folder: Path) -> str:
    (folder / "deep.yaml").write_text(
        "segment: deep\ncondition: {tag: x}\nx: " + "[" * 20000 + "]" * 20000 + "\n",
        encoding="utf-8",
    )
    return "deep.yaml:3:104: the YAML nests more than 100 levels deep"


@pytest.mark.parametrize("make", [bomb, huge, deep], ids=["alias bomb", "50 MB", "deep"])
def test_check_refuses_it_fast_and_in_little_memory(
    tmp_path: Path, make: Callable[[Path], str]
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    expected = make(folder)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seconds, grown, *problems = result.stdout.splitlines()
    assert len(problems) == 1 and problems[0].startswith(f"{folder}/{expected}"), problems
    assert float(seconds) < 1.5
    assert int(grown) < 50 * 1024  # KB: the 50 MB file is never read whole


# ------------------------------------------------------------------ aliases


def test_an_alias_bomb_is_located_at_the_anchor_it_repeats(write: Write, flows: Path) -> None:
    # Six levels: 531,441 values, harmless to build, and over the budget all the same.
    write("bomb.yaml", "fields: {age: {type: integer}}\n---\n" + billion_laughs(6))
    [problem] = problems_of(flows)
    assert problem == (
        "flows/bomb.yaml:9:4: YAML aliases expand this document to more than 200,000 values: "
        "'&e' stands for 66,430 of them and appears 10 times; write the values out, or use "
        "fewer aliases"
    )


def test_the_document_after_a_bomb_is_still_read(write: Write, flows: Path) -> None:
    write("bomb.yaml", billion_laughs(7) + "---\nsegment: fine\ncondition: {tagg: x}\n")
    found = problems_of(flows)
    assert len(found) == 2
    assert "YAML aliases expand this document" in found[0]
    assert found[1].startswith("flows/bomb.yaml:12:") and "tagg" in found[1]


def test_an_alias_inside_the_node_it_names(write: Write, flows: Path) -> None:
    write("loop.yaml", "segment: loop\ncondition: {tag: x}\nx: &a [1, *a]\n")
    assert problems_of(flows) == [
        "flows/loop.yaml:3:4: the alias '*a' stands inside the node it names, so the "
        "document never ends"
    ]


def test_aliases_within_the_budget_load_as_before(write: Write, flows: Path) -> None:
    write(
        "flows.yaml",
        textwrap.dedent(
            """\
            fields: {age: {type: integer}}
            tags: [女性, 男性]
            ---
            flow: welcome
            start_on: [{keyword: アンケート}]
            steps:
              - ask: gender
                text: 性別は?
                choices: &genders
                  - {label: 女性, do: [{tag: 女性}]}
                  - {label: 男性, do: [{tag: 男性}]}
              - ask: again
                text: もう一度
                choices: *genders
            ---
            broadcast: hello
            segment: {all: [&women {tag: 女性}, {not: {all: [*women, {field: age, gte: 20}]}}]}
            messages: [{text: こんにちは}]
            """
        ),
    )
    catalogue = load_catalogue(flows)
    assert [len(s.choices or []) for s in catalogue.flows["welcome"].steps] == [2, 2]
    segment = catalogue.broadcasts["hello"].segment
    assert isinstance(segment, AllCondition) and isinstance(segment.all[1], NotCondition)
    assert segment.all[1].not_.all[0] == segment.all[0]  # type: ignore[union-attr]


def test_a_file_of_exactly_1_mb_is_read(write: Write, flows: Path) -> None:
    text = "tags: [a]\n# " + "x" * (1024 * 1024 - 13) + "\n"
    assert len(text.encode()) == 1024 * 1024
    write("big.yaml", text)
    assert load_catalogue(flows).tags == ["a"]
    write("big.yaml", text + "\n")
    assert problems_of(flows) == [
        "flows/big.yaml:1:1: the file is 1.0 MB; a flows file may be at most 1.0 MB "
        "(split it into several files)"
    ]


# ------------------------------------------------------------------ durations and numbers


def test_a_duration_beyond_100_years_is_a_problem_not_a_crash(write: Write, flows: Path) -> None:
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration("99999999999999d")
    assert parse_duration("36500d").days == 36500
    write(
        "flow.yaml",
        "flow: f\nstart_on: [{keyword: k}]\ntimeout: 99999999999999d\nsteps: [{ask: q, text: hi}]\n",
    )
    assert problems_of(flows) == [
        "flows/flow.yaml:3:10: flow 'f': the duration '99999999999999d' is too long: "
        "at most 36500d (100 years)"
    ]


def test_numbers_that_are_not_numbers_are_problems(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        textwrap.dedent(
            """\
            fields: {age: {type: integer}, points: {type: integer}}
            ---
            segment: nan
            condition: {field: age, gt: .nan}
            ---
            flow: f
            start_on: [{keyword: k}]
            steps:
              - ask: q
                text: hi
                do: [{set: {points: 100000000000000000000}}]
            """
        ),
    )
    found = problems_of(flows)
    assert "flows/a.yaml:4:12: 'condition': input should be a finite number" in found
    assert (
        "flows/a.yaml:11:25: field 'points': 100000000000000000000 is out of range "
        "(an integer field holds at most ±9,007,199,254,740,991)"
    ) in found
