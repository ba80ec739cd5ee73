"""Mermaid diagrams drawn from the engine's graph."""

from __future__ import annotations

import re

from bot.catalogue.diagram import describe, escape, mermaid
from bot.catalogue.loader import load_catalogue, parse_flow_document
from tests.unit.catalogue.conftest import EXAMPLE

SMALL = """\
flow: small
title: "小さな \\"フロー\\""
steps:
  - ask: q1
    text: "{{ friend.name }}さん、ご来店は; 初めて?"
    choices:
      - {label: はい, next: q3}
      - {label: いいえ}
      - {label: 2回目}
  - ask: q2
    when: {tag: 常連}
    text: "いつもありがとう <3 #感謝"
    next: [{if: {all: [{field: age, gte: 40}, {not: {tag: VIP}}]}, goto: end}, {goto: q3}]
  - ask: q3
    text: |
      ご感想を
      どうぞ
"""


def test_small_flow_exact_text() -> None:
    assert mermaid(parse_flow_document(SMALL)) == (
        "stateDiagram-v2\n"
        '    %% small: 小さな "フロー"\n'
        '    state "q1: #123;#123; friend.name #125;#125;さん、ご来店は#59; 初めて?" as s0\n'
        '    state "q2: いつもありがとう #lt;3 #35;感謝" as s1\n'
        '    state "q3: ご感想を どうぞ" as s2\n'
        "    [*] --> s0\n"
        "    s0 --> s2 : はい\n"
        "    s0 --> s1 : いいえ, 2回目\n"
        "    s0 --> [*] : skip q2\n"
        "    s1 --> [*] : if age ≥ 40 and not tag VIP\n"
        "    s1 --> s2 : else\n"
        "    s2 --> [*]\n"
    )


def test_example_welcome_flow() -> None:
    text = mermaid(load_catalogue(EXAMPLE).flows["welcome"])
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> s0" in lines
    assert "    s0 --> s1 : 女性, 男性" in lines
    assert "    s1 --> s3 : skip concern" in lines
    assert "    s2 --> s3 : 産後ケア / if age ≥ 40" in lines
    assert "    s2 --> [*] : 産後ケア / else, 腰痛" in lines
    assert "    s3 --> [*] : はい, いいえ" in lines


def test_long_questions_are_shortened() -> None:
    flow = parse_flow_document("flow: f\nsteps:\n  - {ask: a, text: '" + "あ" * 60 + "'}\n")
    assert f'state "a: {"あ" * 39}…" as s0' in mermaid(flow)


def test_escape_leaves_no_mermaid_syntax() -> None:
    escaped = escape('a "b" {c} [d] <e> f;g #h |i| `j` \\k\nl')
    bare = re.sub(r"#\w+;", "", escaped)
    for char in '"{}[]<>;|`#\\\n':
        assert char not in bare
    assert escaped.startswith("a #quot;b#quot; #123;c#125;")


def test_describe_conditions() -> None:
    assert describe({"field": "age", "between": [30, 49]}) == "age 30–49"
    assert describe({"field": "gender", "in": ["female", "other"]}) == "gender in female, other"
    assert describe({"field": "email", "exists": False}) == "email is not set"
    assert describe({"any": [{"tag": "a"}, {"clicked": "coupon", "within": "7d"}]}) == (
        "tag a or clicked coupon within 7d"
    )
    assert describe({"answered": {"flow": "w", "step": "g", "value": "女性"}}) == (
        "answered w.g = 女性"
    )
