"""Loading: the example, merging, all-or-nothing, flow sources, positions of model errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalogue import Catalogue, CatalogueError, FlowSource
from bot.catalogue.loader import load_catalogue, parse_flow_document, yaml_files
from bot.catalogue.models import FlowDoc
from tests.unit.catalogue.conftest import EXAMPLE, Write


def problems(folder: Path) -> list[str]:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(folder)
    return [str(p) for p in caught.value.problems]


# ---------------------------------------------------------------------------- the example


def test_example_loads() -> None:
    catalogue = load_catalogue(EXAMPLE)
    assert isinstance(catalogue, Catalogue)
    assert sorted(catalogue.flows) == ["booking", "welcome"]
    assert catalogue.folder == EXAMPLE
    assert {"女性", "男性", "30代", "40代", "回答済み", "クーポンクリック"} <= set(catalogue.tags)
    assert catalogue.fields["age"].type == "integer"
    assert catalogue.fields["preferred_date"].type == "date"
    assert [k.match for k in catalogue.keywords] == ["営業時間", "アクセス", "予約", "クーポン"]
    assert list(catalogue.links) == ["coupon"]
    welcome = catalogue.flows["welcome"]
    assert [s.ask for s in welcome.steps] == ["gender", "age", "concern", "menopause"]
    assert welcome.title == "はじめてのアンケート"
    assert str(welcome.timeout) == "1 day, 0:00:00"


def test_example_files_start_with_the_schema_comment() -> None:
    for path in sorted(EXAMPLE.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../bot/catalogue/stepline.schema.json"


def test_flow_sources_are_the_documents_own_text() -> None:
    catalogue = load_catalogue(EXAMPLE)
    source = catalogue.flow_sources["welcome"]
    assert isinstance(source, FlowSource)
    assert source.file == str(EXAMPLE / "salon.yaml")
    assert source.text.startswith("flow: welcome ")
    assert source.text.endswith("{say: ありがとうございました!}]\n")
    assert "fields:" not in source.text and "---" not in source.text
    lines = (EXAMPLE / "salon.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[source.line - 1].startswith("flow: welcome")
    assert len(source.content_hash) == 64
    assert catalogue.flow_hash("welcome") == source.content_hash


@pytest.mark.parametrize("name", ["welcome", "booking"])
def test_parse_flow_document_rebuilds_the_flow(name: str) -> None:
    catalogue = load_catalogue(EXAMPLE)
    rebuilt = parse_flow_document(catalogue.flow_sources[name].text)
    assert isinstance(rebuilt, FlowDoc)
    assert rebuilt == catalogue.flows[name]


def test_parse_flow_document_errors() -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_flow_document("flow: x\nsteps:\n  - {ask: a, txt: hello}\n")
    assert [str(p) for p in caught.value.problems] == [
        "<flow>:3:14: unknown key 'txt' in step 'a' (did you mean 'text'?)",
    ]
    with pytest.raises(CatalogueError) as caught:
        parse_flow_document("tags: [a]\n")
    assert [str(p) for p in caught.value.problems] == [
        "<flow>:1:1: expected exactly one flow document"
    ]


def test_a_flow_source_changes_with_its_own_text_only(write: Write, flows: Path) -> None:
    write("a.yaml", "tags: [x]\n---\nflow: f\nsteps:\n  - {ask: a, text: hi}\n")
    before = load_catalogue(flows).flow_hash("f")
    write("a.yaml", "tags: [x, y]\n---\nflow: f\nsteps:\n  - {ask: a, text: hi}\n")
    assert load_catalogue(flows).flow_hash("f") == before
    write("a.yaml", "tags: [x, y]\n---\nflow: f\nsteps:\n  - {ask: a, text: hello}\n")
    assert load_catalogue(flows).flow_hash("f") != before


# ---------------------------------------------------------------------------- files and merging


def test_files_are_read_recursively_in_order(write: Write, flows: Path) -> None:
    write("b.yml", "tags: [b]\n")
    write("a.yaml", "tags: [a]\n")
    write("sub/c.yaml", "tags: [c, a]\n")
    write(".hidden/d.yaml", "not: [valid")
    write("notes.txt", "ignored")
    assert [p.relative_to(flows).as_posix() for p in yaml_files(flows)] == [
        "a.yaml",
        "b.yml",
        "sub/c.yaml",
    ]
    assert load_catalogue(flows).tags == ["a", "b", "c"]


def test_declarations_merge_and_may_share_a_document(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "fields:\n  age: {type: integer}\ntags: [x]\nkeywords:\n  - {match: a, reply: A}\n"
        "links:\n  l1: {url: 'https://example.com/1'}\n",
    )
    write(
        "b.yaml",
        "fields:\n  name: {type: text}\n---\nkeywords:\n  - {match: b, reply: B}\n---\n"
        "links:\n  l2: {url: 'https://example.com/2'}\n",
    )
    catalogue = load_catalogue(flows)
    assert list(catalogue.fields) == ["age", "name"]
    assert [k.match for k in catalogue.keywords] == ["a", "b"]
    assert list(catalogue.links) == ["l1", "l2"]


def test_a_flow_key_inside_a_declarations_document(write: Write, flows: Path) -> None:
    write("a.yaml", "tags: [x]\nflow: f\nsteps: []\n")
    assert problems(flows) == [
        "flows/a.yaml:2:1: 'flow' starts a document of its own: put a '---' line before it",
        "flows/a.yaml:3:1: unknown key 'steps' (this document may hold fields, tags, keywords"
        " and links)",
    ]


def test_all_or_nothing(example: Path, write: Write) -> None:
    write("zz.yaml", "flow: extra\nsteps:\n  - {ask: a, text: hi, do: [{tag: 未定義}]}\n")
    assert problems(example) == [
        "flows/zz.yaml:3:35: unknown tag '未定義' (declare it in a tags list)"
    ]


def test_every_problem_of_every_file_is_reported(write: Write, flows: Path) -> None:
    write("a.yaml", "flow: a\nsteps: [{ask: x}]\n")
    write("b.yaml", "tags: [x\n")
    write("c.yaml", "flow: c\nsteps:\n  - {ask: x, text: hi, next: nowhere}\n")
    assert problems(flows) == [
        "flows/a.yaml:2:9: missing key 'text' in step 'x'",
        "flows/b.yaml:2:1: YAML syntax error: the '[' at line 1 column 7 is never closed with ']'",
        "flows/c.yaml:3:30: flow 'c' has no step 'nowhere'",
    ]


def test_a_broken_flow_is_not_also_an_unknown_flow(write: Write, flows: Path) -> None:
    write("a.yaml", "keywords:\n  - {match: x, do: [{start_flow: f}]}\n---\nflow: f\nsteps: 3\n")
    assert problems(flows) == ["flows/a.yaml:5:8: flow 'f': 'steps' must be a list, got 3"]


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope") == [
        f"{tmp_path / 'nope'}:1:1: the flows folder does not exist"
    ]
    assert problems(tmp_path) == [f"{tmp_path}:1:1: the flows folder holds no .yaml files"]


def test_comment_only_file_and_empty_documents(write: Write, flows: Path) -> None:
    write("a.yaml", "# nothing here\n")
    write("b.yaml", "tags: [x]\n---\n# empty\n---\ntags: [y]\n")
    assert problems(flows) == [
        "flows/a.yaml:1:1: the file holds no YAML document (expected a document such as"
        " 'flow: name')",
        "flows/b.yaml:2:1: empty document",
    ]


def test_a_scalar_document(write: Write, flows: Path) -> None:
    write("a.yaml", "tags: [x]\n---\njust text\n")
    assert problems(flows) == [
        "flows/a.yaml:2:1: a document must be a mapping that starts with one of: fields, tags,"
        " flow, keywords, links, event, sequence, segment, broadcast, rich_menu (got 'just text')"
    ]


def test_unreadable_file(write: Write, flows: Path) -> None:
    path = write("a.yaml", "tags: [x]\n")
    path.chmod(0)
    try:
        if path.open("rb"):  # running as root: permissions do not apply
            pytest.skip("files are always readable here")
    except PermissionError:
        pass
    try:
        assert problems(flows) == ["flows/a.yaml:1:1: cannot read the file: Permission denied"]
    finally:
        path.chmod(0o644)


def test_a_byte_order_mark_is_accepted(flows: Path) -> None:
    (flows / "a.yaml").write_bytes("\ufefftags: [x]\n".encode())
    assert load_catalogue(flows).tags == ["x"]


# ---------------------------------------------------------------------------- error positions


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        # aliases: `if`, `in`, `not`
        (
            "  - {ask: a, text: t, next: [{if: {tag: x, field: y}, goto: end}]}\n",
            "3:44: one condition cannot hold both 'tag' and 'field' in step 'a';"
            " combine them with all: [{tag: …}, {field: …}]",
        ),
        (
            "  - {ask: a, text: t, when: {field: age, in: 5}}\n",
            "3:46: the 'field' condition of step 'a': 'in' must be a list, got 5",
        ),
        (
            "  - {ask: a, text: t, when: {not: {tagg: x}}}\n",
            "3:36: unknown condition 'tagg' in step 'a' (did you mean 'tag'?)",
        ),
        # a tagged union inside a plain union inside a list
        (
            "  - {ask: a, text: t, next: [{goto: b, iff: {tag: x}}]}\n  - {ask: b, text: t}\n",
            "3:40: unknown key 'iff' in the 'next' rule of step 'a' (did you mean 'if'?)",
        ),
        (
            "  - {ask: a, text: t, next: 5}\n",
            "3:29: step 'a': 'next' must be text or a list, got 5",
        ),
        # nested messages and buttons
        (
            "  - ask: a\n    text: t\n    messages:\n"
            "      - {buttons: {text: b, actions: [{label: x}]}}\n",
            "6:39: the button of step 'a': an action needs exactly one of: text, data, uri,"
            " datetime",
        ),
        (
            "  - ask: a\n    text: t\n    choices: [{label: x, datetime: dat}]\n",
            "5:36: choice 'x' of step 'a': 'datetime' must be 'date', 'time' or 'datetime',"
            " got 'dat' (did you mean 'date'?)",
        ),
        (
            "  - {ask: end, text: t}\n",
            "3:5: step 'end': 'end' is reserved (it completes the flow); name the step otherwise",
        ),
        (
            "  - {ask: a, text: t}\n  - {ask: a, text: u}\n",
            "4:11: step 'a' is defined twice (first at line 3)",
        ),
        (
            "  - {ask: a b, text: t}\n",
            "3:11: step 'a b': 'ask' must be a name without spaces, ':', '|' or '/' (at most 100"
            " characters), got 'a b'",
        ),
        (
            "  - {ask: a, text: t, max_retries: 11}\n",
            "3:36: step 'a': 'max_retries' must be at most 10, got 11",
        ),
        (
            "  - {ask: a, text: t, do: [{tag_by: {field: age, ranges: {30代: [30]}}}]}\n",
            "3:64: the 'tag_by' action of step 'a': '30代' needs 2 items, got 1",
        ),
        (
            "  - {ask: a, text: t, do: [{set: {}}]}\n",
            "3:34: step 'a': 'set' needs at least 1 entry",
        ),
        (
            "  - {ask: a, text: t, choices: []}\n",
            "3:5: step 'a': 'choices' needs at least one choice",
        ),
    ],
)
def test_model_errors_point_at_the_node(
    yaml: str, expected: str, write: Write, flows: Path
) -> None:
    write("a.yaml", "flow: f\nsteps:\n" + yaml)
    assert problems(flows) == [f"flows/a.yaml:{expected}"]
