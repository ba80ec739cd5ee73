"""Templates in what the engine says: the friend's name and fields; a broken template never
sends raw Jinja."""

from __future__ import annotations

import pytest

from bot.line.message_schema import message_problems
from tests.unit.engine.conftest import Engine, MakeEngine

CATALOGUE = """
    fields:
      age: {type: integer, min: 0, max: 120}
      points: {type: integer, default: 0}
    ---
    flow: welcome
    start_on: [{follow: new}]
    steps:
      - ask: age
        text: "{{ friend.name }}さん、年齢を教えてください"
        input: integer
        save: age
      - ask: confirm
        text: "{{ fields.age }}歳でよろしいですか?(現在 {{ fields.points }} pt)"
        choices: [{label: "{{ fields.age }}歳です"}, {label: いいえ}]
    ---
    keywords:
      - {match: 来年, reply: "来年は{{ fields.age + 1 }}歳ですね"}
      - {match: 年齢, reply: "{{ fields.age + 1 }}"}
    """


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(CATALOGUE)


def test_the_friend_name_and_fields_are_rendered(engine: Engine) -> None:
    assert engine.follow("U1", name="花子").texts == ["花子さん、年齢を教えてください"]
    asked = engine.say("U1", "42")
    assert asked.texts == ["42歳でよろしいですか?(現在 0 pt)"]
    assert asked.labels == ["42歳です", "いいえ"]


def test_a_template_that_fails_drops_its_template_parts(engine: Engine) -> None:
    # age is unset: `fields.age + 1` fails when rendered (check cannot know).
    assert engine.say("U1", "来年").texts == ["来年は歳ですね"]


def test_a_text_that_is_only_a_failing_template_never_sends_raw_jinja(engine: Engine) -> None:
    said = engine.say("U1", "年齢")
    assert all("{{" not in text for text in said.texts), said.texts


def test_a_label_whose_template_fails_is_still_sendable(make_engine: MakeEngine) -> None:
    """A failed template renders empty, never as raw Jinja; an empty label would make LINE
    refuse the whole request, so it becomes '…' and the question still goes out."""
    engine = make_engine(
        """
fields:
  age: {type: integer}
---
flow: ask
start_on: [{keyword: 質問}]
steps:
  - ask: q
    text: どちらですか
    choices:
      - {label: "{{ fields.age + 1 }}"}
      - {label: いいえ}
"""
    )
    asked = engine.say("U1", "質問")
    assert asked.texts == ["どちらですか"]
    assert asked.labels == ["…", "いいえ"]
    assert [message_problems(m) for m in asked.messages] == [[]]  # LINE accepts it
