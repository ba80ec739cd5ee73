"""The condition language (`when`, `next.if`, `show_when`) evaluated on one friend's record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.engine.actions import run_actions
from bot.engine.conditions import evaluate
from tests.unit.engine.conftest import Engine, MakeEngine, actions, condition

CATALOGUE = """
    fields:
      gender: {type: choice, choices: [female, male, other]}
      age: {type: integer, min: 0, max: 120}
      email: {type: email}
      points: {type: integer, default: 0}
    tags: [女性, 男性, 購入済み]
    ---
    flow: welcome
    start_on: [{follow: new}]
    steps:
      - ask: gender
        text: 性別を教えてください
        choices: [{label: 女性}, {label: 男性}]
    """


@pytest.fixture
def hanako(make_engine: MakeEngine) -> Engine:
    """花子: tagged 女性, 42 years old, answered the gender question, nothing else."""
    engine = make_engine(CATALOGUE)
    engine.follow("U1", name="花子")
    engine.say("U1", "女性")
    with engine.turn("U1") as turn:
        run_actions(turn, actions("[{tag: 女性}, {set: {gender: female, age: 42}}]"), "test")
    return engine


def holds(engine: Engine, text: str) -> bool:
    with engine.turn("U1") as turn:
        return evaluate(condition(text), turn.record)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{tag: 女性}", True),
        ("{tag: 男性}", False),
        ("{field: age, gte: 40}", True),
        ("{field: age, lt: 40}", False),
        ("{field: age, between: [40, 49]}", True),
        ("{field: age, in: [41, 42]}", True),
        ("{field: gender, eq: female}", True),
        ("{field: gender, ne: female}", False),
        ("{field: email, exists: false}", True),
        ("{field: email, ne: a@example.com}", True),  # unset is "not equal"
        ("{field: email, eq: a@example.com}", False),
        ("{field: points, eq: 0}", True),  # a field's default counts while it is unset
        ("{field: gender, gt: 3}", False),  # incomparable types (text, number) never match
        ("{not: {tag: 購入済み}}", True),
        ("{not: {tag: 女性}}", False),
        ("{all: [{tag: 女性}, {field: age, between: [30, 49]}]}", True),
        ("{all: [{tag: 女性}, {tag: 購入済み}]}", False),
        ("{any: [{tag: 男性}, {field: age, gte: 40}]}", True),
        ("{any: [{tag: 男性}, {tag: 購入済み}]}", False),
        ("{answered: {flow: welcome, step: gender, value: 女性}}", True),
        ("{answered: {flow: welcome, step: gender, value: 男性}}", False),
        ("{in_sequence: welcome_steps}", False),
    ],
)
def test_condition(hanako: Engine, text: str, expected: bool) -> None:
    assert holds(hanako, text) is expected


def test_followed_within_follows_the_clock(hanako: Engine) -> None:
    assert holds(hanako, "{followed_within: 7d}")
    hanako.advance(timedelta(days=7, seconds=1))
    assert not holds(hanako, "{followed_within: 7d}")
