"""Keywords (自動応答) and flows started by a keyword, in and out of a questionnaire."""

from __future__ import annotations

import pytest

from tests.unit.engine.conftest import Engine, MakeEngine

CATALOGUE = """
    tags: [女性, 予約希望]
    ---
    flow: welcome
    start_on: [{follow: new}, {keyword: アンケート}]
    steps:
      - ask: gender
        text: 性別を教えてください
        choices: [{label: 女性, do: [{tag: 女性}]}, {label: 男性}]
      - ask: request
        text: ご要望があればどうぞ
        input: text
    on_complete: [{say: 承りました}]
    ---
    flow: booking
    steps:
      - {ask: date, text: ご希望の日付を教えてください, input: date}
    ---
    keywords:
      - {match: 営業時間, mode: contains, reply: "10:00〜19:00です"}
      - {match: 予約, do: [{tag: 予約希望}, {start_flow: booking}]}
    """


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(CATALOGUE)


def test_a_keyword_gets_its_reply(engine: Engine) -> None:
    assert engine.say("U1", "営業時間を教えてください").texts == ["10:00〜19:00です"]
    assert engine.say("U1", "予約したい").messages == []  # `予約` matches exactly only
    assert engine.conversation("U1") is None


def test_a_keyword_starts_a_flow(engine: Engine) -> None:
    assert engine.say("U1", "予約").texts == ["ご希望の日付を教えてください"]
    assert engine.tags("U1") == {"予約希望"}
    assert engine.conversation("U1") == {"flow": "booking", "state": "date", "status": "active"}


def test_a_flow_start_on_keyword_restarts_it_from_the_top(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", 0)
    assert engine.say("U1", "アンケート").texts == ["性別を教えてください"]
    assert engine.conversations("U1") == [
        {"flow": "welcome", "state": "request", "status": "replaced"},
        {"flow": "welcome", "state": "gender", "status": "active"},
    ]


def test_a_keyword_that_is_no_answer_is_replied_and_the_question_comes_back(
    engine: Engine,
) -> None:
    engine.follow("U1")
    replied = engine.say("U1", "営業時間は?")
    assert replied.texts == ["10:00〜19:00です", "性別を教えてください"]  # its quick replies again
    assert replied.labels
    assert engine.conversation("U1") == {"flow": "welcome", "state": "gender", "status": "active"}
    assert engine.tap("U1", "welcome", "gender", 0).texts == ["ご要望があればどうぞ"]


def test_a_keyword_that_is_a_valid_answer_answers_the_question(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", 0)
    # Any text answers a free-text question: the keyword is taken as the answer.
    assert engine.say("U1", "営業時間は?").texts == ["承りました"]
    assert engine.conversation("U1") == {"flow": "welcome", "state": "end", "status": "completed"}


def test_a_start_flow_keyword_mid_flow_replaces_the_questionnaire(engine: Engine) -> None:
    engine.follow("U1")
    assert engine.say("U1", "予約").texts == ["ご希望の日付を教えてください"]
    assert engine.conversations("U1") == [
        {"flow": "welcome", "state": "gender", "status": "replaced"},
        {"flow": "booking", "state": "date", "status": "active"},
    ]
