"""Loading: the example, merging, all-or-nothing, flow sources, positions of model errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.catalogue import Catalogue, CatalogueError, FlowSource
from bot.catalogue.loader import folder_hash, load_catalogue, parse_flow_document, yaml_files
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


def test_a_catalogue_is_named_by_the_hash_of_its_files(
    write: Write, flows: Path, tmp_path: Path
) -> None:
    write("a.yaml", "tags: [a]\n")
    write("sub/b.yaml", "tags: [b]\n")
    catalogue = load_catalogue(flows)
    assert len(catalogue.content_hash) == 64
    assert folder_hash(flows) == catalogue.content_hash  # the cheap look: bytes, no parsing
    elsewhere = tmp_path / "another host" / "flows"
    shutil.copytree(flows, elsewhere)
    assert load_catalogue(elsewhere).content_hash == catalogue.content_hash

    write(".hidden/notes.yaml", "not: [read")
    write("README.txt", "not read either")
    assert folder_hash(flows) == catalogue.content_hash
    write("a.yaml", "tags: [a] \n")  # one byte
    assert folder_hash(flows) != catalogue.content_hash
    write("a.yaml", "tags: [a]\n")
    (flows / "sub" / "b.yaml").rename(flows / "sub" / "c.yaml")  # same bytes, another name
    assert folder_hash(flows) != catalogue.content_hash
    (flows / "sub" / "c.yaml").rename(flows / "sub" / "b.yaml")
    assert load_catalogue(flows).content_hash == catalogue.content_hash


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


# ---------------------------------------------------------------------------- every problem in one run


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # the issue: a key typo hid an unknown tag of the same flow
        (
            "  - {ask: a, text: t, input: integer, sav: age}\n"
            "  - {ask: b, text: t, do: [{tag: 未定義}]}\n",
            [
                "5:39: unknown key 'sav' in step 'a' (did you mean 'save'?)",
                "6:34: unknown tag '未定義' (declare it in a tags list)",
            ],
        ),
        # in the same step, and in a choice of it
        (
            "  - ask: a\n    sav: age\n    text: t\n    do: [{tag: 未定義}]\n"
            "    choices: [{label: x, do: [{set: {agee: 1}}]}]\n",
            [
                "6:5: unknown key 'sav' in step 'a' (did you mean 'save'?)",
                "8:16: unknown tag '未定義' (declare it in a tags list)",
                "9:38: unknown field 'agee' (did you mean 'age'?)",
            ],
        ),
        # a wrong value; an unknown action next to a good one that names an unknown tag
        (
            "  - {ask: a, text: t, input: integr, do: [{tagg: x}, {tag: 未定義}]}\n",
            [
                "5:30: step 'a': 'input' must be 'text', 'integer', 'number', 'email', 'phone',"
                " 'date' or 'datetime', got 'integr' (did you mean 'integer'?)",
                "5:44: unknown action 'tagg' in step 'a' (did you mean 'tag'?)",
                "5:60: unknown tag '未定義' (declare it in a tags list)",
            ],
        ),
        # a broken step kept the check of the whole flow (no step twice) from running
        (
            "  - {ask: a, text: t, choices: [{label: y}], input: integer}\n"
            "  - {ask: b, text: t, do: [{tag: 未定義}]}\n  - {ask: b, text: u}\n",
            [
                "5:5: step 'a': a step has either 'choices' or 'input', not both",
                "6:34: unknown tag '未定義' (declare it in a tags list)",
                "7:11: step 'b' is defined twice (first at line 6)",
            ],
        ),
        # a step that cannot be kept at all: the others are still linted
        (
            "  - {ask: a, txet: t}\n  - {ask: b, text: '{{ oops', next: nowhere}\n",
            [
                "5:14: unknown key 'txet' in step 'a' (did you mean 'text'?)",
                "6:20: template error: unexpected end of template, expected 'end of print"
                " statement'",
                "6:37: flow 'f' has no step 'nowhere'",
            ],
        ),
    ],
)
def test_a_problem_does_not_hide_the_rest_of_its_document(
    steps: str, expected: list[str], write: Write, flows: Path
) -> None:
    write("a.yaml", "fields: {age: {type: integer}}\n---\nflow: f\nsteps:\n" + steps)
    assert problems(flows) == [f"flows/a.yaml:{e}" for e in expected]


USES_FLOW_F = (
    "flow: g\nsteps:\n"
    "  - {ask: a, text: t, when: {answered: {flow: f, step: a}}, do: [{start_flow: f}]}\n"
)
USES_SEQUENCE_S = (
    "flow: g\nsteps:\n  - ask: a\n    text: t\n    when: {in_sequence: s}\n"
    "    do: [{start_sequence: s}, {stop_sequence: s}]\n"
)
USES_RICH_MENU_M = (
    "flow: g\nsteps:\n  - {ask: a, text: t, do: [{rich_menu: m}]}\n---\nrich_menu: n\nareas:\n"
    "  - {bounds: [0, 0, 2500, 1686], label: x, tap: {switch: m-alias}}\n"
)


@pytest.mark.parametrize(
    ("broken", "uses", "first"),
    [
        ("flow: f\nsteps: 3\n", USES_FLOW_F, "2:8: flow 'f': 'steps' must be a list, got 3"),
        (
            'flow: f\nsteps: [{ask: a, text: "x}]\n',
            USES_FLOW_F,
            "3:1: YAML syntax error: found unexpected end of stream (while scanning a quoted"
            " scalar that starts at line 2)",
        ),
        (
            "flw: f\nsteps: [{ask: a, text: x}]\n",
            USES_FLOW_F,
            "1:1: unknown document kind 'flw' (did you mean 'flow'?)",
        ),
        (
            "steps: [{ask: a, text: x}]\nflow: f\n",
            USES_FLOW_F,
            "1:1: a document must start with its kind: put 'flow' first (got 'steps')",
        ),
        (
            "flow: [f]\nsteps: [{ask: a, text: x}]\n",
            USES_FLOW_F,
            "1:7: this flow: 'flow' must be text, got a list",
        ),
        (
            "sequence: s\nsteps: [{aftr: 1d, text: hi}]\n",
            USES_SEQUENCE_S,
            "2:10: unknown key 'aftr' in step 1 (did you mean 'after'?)",
        ),
        (
            "rich_menu: m\nalias: m-alias\nsize: huge\nareas: [{bounds: [0, 0, 1, 1], tap: {}}]\n",
            USES_RICH_MENU_M,
            "3:7: 'size' must be 'large' or 'compact', got 'huge'",
        ),
        (
            "rich_menu: m\nalis: m-alias\nareas: [{bounds: [0, 0, 1, 1], label: x, tap: {}}]\n",
            USES_RICH_MENU_M,
            "2:1: unknown key 'alis' (did you mean 'alias'?)",
        ),
    ],
)
def test_a_broken_document_is_not_also_unknown(
    broken: str, uses: str, first: str, write: Write, flows: Path
) -> None:
    """What a broken document defines is not reported unknown where it is used."""
    write("a.yaml", broken)
    write("b.yaml", uses)
    found = problems(flows)
    assert found[0] == f"flows/a.yaml:{first}"
    assert all(p.startswith("flows/a.yaml:") for p in found), found


@pytest.mark.parametrize(
    ("broken", "uses"),
    [
        ("tags: 女性, 男性\n", "do: [{tag: 女性}, {untag: 男性}], when: {tag: 男性}"),
        ("tags: [女性, 男性\n", "do: [{tag: 女性}, {untag: 男性}], when: {tag: 男性}"),
        ("tags: [女性, {男性: x}]\n", "do: [{tag: 女性}, {untag: 男性}], when: {tag: 男性}"),
        ("fields: [age, gender]\n", "input: integer, save: age, do: [{set: {gender: x}}]"),
        ("fields:\n  age: {type: integer\n", "input: integer, save: age, do: [{clear: age}]"),
        (
            "fields:\n  age: {type: integr}\n  gender: {type: text}\n",
            "input: integer, save: age, do: [{set: {gender: x}}]",
        ),
        ("fields: 5\n", "input: integer, save: age, do: [{set: {gender: x}}]"),
        ("links: https://example.com/\n", "when: {clicked: coupon}"),
    ],
)
def test_a_broken_declaration_does_not_flood(
    broken: str, uses: str, write: Write, flows: Path
) -> None:
    """A broken `tags:`, `fields:` or `links:` document: its one problem, not every use."""
    write("a.yaml", broken)
    write("b.yaml", "flow: g\nsteps:\n  - {ask: a, text: t, " + uses + "}\n")
    found = problems(flows)
    assert len(found) == 1 and found[0].startswith("flows/a.yaml:"), found


def test_a_syntax_error_hides_no_later_document(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "tags: [x\n---\nflow: f\nsteps: [{ask: a, text: t, next: nowhere}]\n"
        "---\nflow: g\nsteps: [{ask: a, text: t, next: [}]\n"
        "---\nflow: h\nsteps: [{ask: a, text: t, do: [{start_flow: g}, {start_flow: i}]}]\n",
    )
    assert problems(flows) == [
        "flows/a.yaml:2:1: YAML syntax error: the '[' at line 1 column 7 is never closed with ']'",
        "flows/a.yaml:4:33: flow 'f' has no step 'nowhere'",
        "flows/a.yaml:7:34: YAML syntax error: expected the node content, but found '}'"
        " (while parsing a flow node that starts at line 7)",
        "flows/a.yaml:10:62: unknown flow 'i'",
    ]


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        # without `input`, the answer would be text, which an integer field cannot hold
        (
            "flow: f\nsteps:\n  - {ask: a, text: t, inptu: integer, save: age}\n",
            "3:23: unknown key 'inptu' in step 'a' (did you mean 'input'?)",
        ),
        # without `if`, the first rule would always match and the second never be used
        (
            "flow: f\nsteps:\n"
            "  - {ask: a, text: t, next: [{goto: b, iff: {tag: x}}, {goto: end}]}\n"
            "  - {ask: b, text: t}\n",
            "3:40: unknown key 'iff' in the 'next' rule of step 'a' (did you mean 'if'?)",
        ),
        # without the rule, step 'b' could never be reached
        (
            "flow: f\nsteps:\n"
            "  - {ask: a, text: t, next: [{if: {tag: x}, gotoo: b}, {goto: end}]}\n"
            "  - {ask: b, text: t}\n",
            "3:45: unknown key 'gotoo' in the 'next' rule of step 'a' (did you mean 'goto'?)",
        ),
        # without `anchor`, 'before' would have nothing to count back from
        (
            "sequence: s\nanchor: [a]\nsteps:\n  - {before: 1d, text: hi}\n",
            "2:9: sequence 's': 'anchor' must be text, got a list",
        ),
        # without `image`, every area would need a label
        (
            "rich_menu: m\nimgae: m.png\nareas:\n"
            "  - {bounds: [0, 0, 2500, 1686], tap: {uri: 'https://example.com/'}}\n",
            "2:1: unknown key 'imgae' (did you mean 'image'?)",
        ),
    ],
)
def test_what_is_left_out_of_a_broken_document_causes_nothing(
    yaml: str, expected: str, write: Write, flows: Path
) -> None:
    """The parts a problem is about are left out for lint, and what lint would say only because
    they are missing is not said."""
    write("a.yaml", "tags: [x]\nfields: {age: {type: integer}}\n---\n" + yaml)
    line, rest = expected.split(":", 1)
    assert problems(flows) == [f"flows/a.yaml:{int(line) + 3}:{rest}"]


def test_items_left_out_do_not_shift_positions_or_numbers(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "flow: f\nsteps:\n  - ask: a\n    text: t\n"
        "    choices: [{lable: y}, {label: x}, {label: x, do: [{tag: 未定義}]}]\n",
    )
    assert problems(flows) == [
        "flows/a.yaml:5:16: unknown key 'lable' in this choice (did you mean 'label'?)",
        "flows/a.yaml:5:47: choice 'x' is in step 'a' twice (also choice 2)",
        "flows/a.yaml:5:61: unknown tag '未定義' (declare it in a tags list)",
    ]
