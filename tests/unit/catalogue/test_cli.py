"""`stepline check`, `stepline diagram` and `stepline schema` through click's CliRunner."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.catalogue.schema import schema_text
from bot.cli.catalogue import check_command, diagram_command, schema_command
from tests.unit.catalogue.conftest import EXAMPLE, Write


def test_check_the_example_passes() -> None:
    result = CliRunner().invoke(check_command, ["--flows", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == "ok: 2 flows, 13 tags, 7 fields, 4 keywords, 1 link, 2 events, 2 sequences,"
        " 2 rich menus\n"
    )


def test_check_defaults_to_stepline_flows_then_dot_flows(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(check_command, [])  # ./flows (the example copy)
    assert result.exit_code == 0, result.output
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "a.yaml").write_text("tags: [x]\n", encoding="utf-8")
    monkeypatch.setenv("STEPLINE_FLOWS", str(other))
    result = CliRunner().invoke(check_command, [])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: 0 flows, 1 tag, 0 fields, 0 keywords, 0 links\n"


def test_check_reports_every_problem_and_exits_1(example: Path, write: Write) -> None:
    write(
        "bad.yaml",
        "flow: bad\nsteps:\n  - ask: a\n    text: どうぞ\n    choise: []\n"
        "---\nflow: bad2\nsteps:\n  - {ask: a, text: x, do: [{tag: 女姓}], next: b}\n",
    )
    write("worse.yaml", "tags: [a\n")
    result = CliRunner().invoke(check_command, [])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "flows/bad.yaml:5:5: unknown key 'choise' in step 'a' (did you mean 'choices'?)",
        "flows/bad.yaml:9:34: unknown tag '女姓' (did you mean '女性'?)",
        "flows/bad.yaml:9:46: flow 'bad2' has no step 'b'",
        "flows/worse.yaml:2:1: YAML syntax error: the '[' at line 1 column 7 is never closed"
        " with ']'",
        "4 problems in 2 files (the catalogue in flows was not loaded)",
    ]


def test_check_reports_a_typo_and_an_unknown_tag_of_one_flow_in_one_run(write: Write) -> None:
    """The issue: with both `sav: age` and an unknown tag, only the first was shown."""
    write(
        "survey.yaml",
        "fields:\n  age: {type: integer}\ntags: [女性]\n---\nflow: survey\nsteps:\n"
        "  - ask: age\n    text: 年齢は?\n    input: integer\n    sav: age\n"
        "  - ask: gender\n    text: 性別は?\n    choices:\n"
        "      - {label: 女性, do: [{tag: 存在しないタグ}]}\n",
    )
    result = CliRunner().invoke(check_command, ["--flows", "flows"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "flows/survey.yaml:10:5: unknown key 'sav' in step 'age' (did you mean 'save'?)",
        "flows/survey.yaml:14:32: unknown tag '存在しないタグ' (declare it in a tags list)",
        "2 problems in 1 file (the catalogue in flows was not loaded)",
    ]


def test_check_refuses_regexes_re2_cannot_run_at_the_pattern(write: Write) -> None:
    """Keyword regexes run on RE2 (linear time); a backreference or lookaround is a problem."""
    write(
        "keywords.yaml",
        "keywords:\n"
        "  - {match: '^(a+)+$', mode: regex, reply: linear on RE2}\n"
        "  - {match: '(a)\\1', mode: regex, reply: backreference}\n"
        "  - match: 予約(?=する)\n    mode: regex\n    reply: lookahead\n",
    )
    result = CliRunner().invoke(check_command, ["--flows", "flows"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "flows/keywords.yaml:3:13: keyword '(a)\\1': not a regular expression RE2 can run:"
        " invalid escape sequence: \\1 (backreferences such as \\1 are not supported)",
        "flows/keywords.yaml:4:12: keyword '予約(?=する)': not a regular expression RE2 can run:"
        " invalid perl operator: (?= (lookahead is not supported)",
        "2 problems in 1 file (the catalogue in flows was not loaded)",
    ]


def test_check_prints_warnings_and_still_passes(write: Write) -> None:
    write(
        "links.yaml",
        "links:\n  spring: {url: 'https://example.com/s', on_click: [{say: どうぞ}]}\n",
    )
    result = CliRunner().invoke(check_command, ["--flows", "flows"])
    assert result.exit_code == 0, result.output
    warning, summary = result.output.splitlines()
    assert warning.startswith(
        "flows/links.yaml:2:54: warning: link 'spring': on_click sends a message (say), so a"
        " click can cost a push message"
    )
    assert summary == "ok: 0 flows, 0 tags, 0 fields, 0 keywords, 1 link; 1 warning"
    write("more.yaml", "tags: [a\n")
    result = CliRunner().invoke(check_command, ["--flows", "flows"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "1 problem, 1 warning in 2 files (the catalogue in flows was not loaded)"
    )


def test_check_prints_paths_relative_to_the_current_folder(example: Path, write: Write) -> None:
    write("bad.yaml", "tags: [x]\n---\nzzz: 1\n")
    result = CliRunner().invoke(check_command, ["--flows", str(example.resolve())])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "flows/bad.yaml:3:1: unknown document kind 'zzz'; a document starts with one of:"
        " fields, tags, flow, keywords, links, event, sequence, segment, broadcast, rich_menu"
    )


def test_check_on_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(check_command, ["--flows", str(missing)])
    assert result.exit_code == 1
    assert f"{missing}:1:1: the flows folder does not exist" in result.output


def test_check_help() -> None:
    result = CliRunner().invoke(check_command, ["--help"])
    assert result.exit_code == 0
    assert "file:line:col: message" in result.output
    assert "STEPLINE_FLOWS" in result.output


def test_diagram_prints_mermaid() -> None:
    result = CliRunner().invoke(diagram_command, ["welcome", "--flows", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("stateDiagram-v2\n")
    assert "    [*] --> s0\n" in result.output


def test_diagram_of_an_unknown_flow() -> None:
    result = CliRunner().invoke(diagram_command, ["nope", "--flows", str(EXAMPLE)])
    assert result.exit_code == 1
    assert "no flow named 'nope' (flows: booking, welcome)" in result.output


def test_diagram_of_a_broken_catalogue(write: Write) -> None:
    write("a.yaml", "flow: a\nsteps: []\n")
    result = CliRunner().invoke(diagram_command, ["a"])
    assert result.exit_code == 1
    assert "run `stepline check`" in result.output


def test_diagram_svg_needs_mmdc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(
        diagram_command, ["welcome", "--flows", str(EXAMPLE), "--svg", str(tmp_path / "w.svg")]
    )
    assert result.exit_code == 1
    assert "--svg needs the Mermaid CLI (`mmdc`) on PATH" in result.output
    assert not (tmp_path / "w.svg").exists()


def test_diagram_svg_runs_mmdc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mmdc"
    # A stand-in renderer: copies the Mermaid input into the "SVG" so the test can see it.
    fake.write_text('#!/bin/sh\ncat "$2" > "$4"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = tmp_path / "w.svg"
    result = CliRunner().invoke(
        diagram_command, ["booking", "--flows", str(EXAMPLE), "--svg", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8").startswith("stateDiagram-v2\n")


def test_schema_prints_the_schema() -> None:
    result = CliRunner().invoke(schema_command, [])
    assert result.exit_code == 0
    assert result.output == schema_text()
    assert json.loads(result.output)["title"] == "stepline catalogue document"


def test_schema_write(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import bot.catalogue.schema as schema

    target = tmp_path / "stepline.schema.json"
    monkeypatch.setattr(schema, "SCHEMA_PATH", target)
    result = CliRunner().invoke(schema_command, ["--write"])
    assert result.exit_code == 0
    assert result.output == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == schema_text()
    result = CliRunner().invoke(schema_command, ["--write"])
    assert result.output == f"unchanged: {target}\n"
