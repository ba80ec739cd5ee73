"""Actions (`do:`): tags, fields, ranges, and the flows a change starts."""

from __future__ import annotations

import pytest

from bot.engine.actions import run_actions
from tests.unit.engine.conftest import Engine, MakeEngine, Outcome, actions

CATALOGUE = """
    fields:
      gender: {type: choice, choices: [female, male, other]}
      age: {type: integer, min: 0, max: 120}
      nickname: {type: text}
      points: {type: integer, default: 0}
    tags: [女性, 男性, 30代, 40代, VIP]
    ---
    flow: vip_welcome
    start_on: [{tag_added: VIP}]
    steps:
      - ask: course
        text: VIP会員のご希望コースは?
        choices: [{label: 全身}, {label: フェイシャル}]
    """


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    engine = make_engine(CATALOGUE)
    engine.follow("U1", name="花子")
    return engine


def do(engine: Engine, text: str) -> Outcome:
    """Run an action list in one turn of U1, and what the change sets off."""
    with engine.turn("U1") as turn:
        run_actions(turn, actions(text), "test")
        engine.dispatcher.finish(turn)
    return Outcome.of(turn)


def test_tag_and_untag(engine: Engine) -> None:
    do(engine, "[{tag: [女性, 30代]}, {tag: 女性}]")
    assert engine.tags("U1") == {"女性", "30代"}
    do(engine, "[{untag: 30代}, {untag: 40代}]")  # a tag the friend does not have: nothing
    assert engine.tags("U1") == {"女性"}


def test_set_coerces_and_renders_templates(engine: Engine) -> None:
    do(engine, '[{set: {gender: female, age: "42", nickname: "{{ friend.name }}ちゃん"}}]')
    assert engine.fields("U1") == {"gender": "female", "age": 42, "nickname": "花子ちゃん"}


def test_a_value_the_field_refuses_is_skipped(engine: Engine) -> None:
    do(engine, "[{set: {age: 200, gender: female}}]")  # age's max is 120
    assert engine.fields("U1") == {"gender": "female"}


def test_increment_starts_from_the_default(engine: Engine) -> None:
    do(engine, "[{increment: {points: 100}}]")
    do(engine, '[{increment: {points: "50"}}]')
    assert engine.fields("U1") == {"points": 150}


def test_clear_removes_a_value(engine: Engine) -> None:
    do(engine, "[{set: {age: 35}}]")
    do(engine, "[{clear: age}]")
    assert engine.fields("U1") == {}


@pytest.mark.parametrize(
    ("age", "tags"),
    [
        ("{set: {age: 29}}", set()),
        ("{set: {age: 30}}", {"30代"}),
        ("{set: {age: 39}}", {"30代"}),
        ("{set: {age: 40}}", {"40代"}),
        ("{set: {age: 49}}", {"40代"}),
        ("{set: {age: 50}}", set()),
    ],
)
def test_tag_by_ranges(engine: Engine, age: str, tags: set[str]) -> None:
    do(engine, f"[{age}, {{tag_by: {{field: age, ranges: {{30代: [30, 39], 40代: [40, 49]}}}}}}]")
    assert engine.tags("U1") == tags


def test_tag_by_without_a_value_tags_nothing(engine: Engine) -> None:
    do(engine, "[{tag_by: {field: age, ranges: {30代: [30, 39]}}}]")
    assert engine.tags("U1") == set()


def test_an_added_tag_starts_the_flow_that_starts_on_it(engine: Engine) -> None:
    assert do(engine, "[{tag: VIP}]").texts == ["VIP会員のご希望コースは?"]
    assert engine.conversation("U1") == {
        "flow": "vip_welcome",
        "state": "course",
        "status": "active",
    }
    assert do(engine, "[{untag: VIP}, {tag: VIP}]").messages == []  # no cutting into it


def test_a_change_from_the_admin_api_fires_the_same_triggers(engine: Engine) -> None:
    with engine.turn("U1") as turn:
        engine.dispatcher.apply_changes(turn, ["VIP"], [], {"age": 45})
    assert turn.outgoing[0]["text"] == "VIP会員のご希望コースは?"
    assert engine.tags("U1") == {"VIP"}
    assert engine.fields("U1") == {"age": 45}
