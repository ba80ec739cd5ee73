"""A postback that is not an answer while a question waits — a rich-menu tab switched, a menu
area tapped, a button of an earlier question — hides LINE's quick replies: the question is
asked again in the same (free) reply, after whatever the postback did, so the friend always
has something to tap. A postback that answers, or that starts another flow, is not followed
by the old question."""

from __future__ import annotations

import pytest

from bot.catalogue.postbacks import choice_data
from bot.catalogue.richmenu_definition import tap_data
from tests.unit.engine.conftest import Engine, MakeEngine

CATALOGUE = """
    fields:
      points: {type: integer, default: 0}
    ---
    rich_menu: guest
    size: compact
    alias: guest
    default: true
    areas:
      - {bounds: [0, 0, 1250, 843], label: 会員メニュー, tap: {switch: member}}
      - {bounds: [1250, 0, 1250, 843], label: ポイント, tap: {do: [{say: "{{ fields.points }} ptです"}]}}
    ---
    rich_menu: member
    size: compact
    alias: member
    areas:
      - {bounds: [0, 0, 1250, 843], label: はじめての方, tap: {switch: guest}}
      - {bounds: [1250, 0, 1250, 843], label: ご予約, tap: {postback: booking}}
    ---
    flow: booking
    start_on: [{keyword: 予約}, {postback: booking}]
    steps:
      - ask: menu
        text: どのメニューにしますか?
        choices: [{label: アロマ60分}, {label: アロマ90分}]
      - ask: when
        text: ご希望の日は?
        choices: [{label: 平日}, {label: 週末}]
    ---
    flow: survey
    start_on: [{keyword: アンケート}]
    steps:
      - ask: first
        text: ご来店は初めてですか?
        choices: [{label: はい}, {label: いいえ}]
    """

QUESTION = "どのメニューにしますか?"


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    engine = make_engine(CATALOGUE)
    engine.follow("U1")
    assert engine.say("U1", "予約").texts == [QUESTION]
    return engine


def area(engine: Engine, menu: str, index: int) -> str:
    return tap_data(menu, index, engine.catalogue.rich_menus[menu].areas[index])


def test_switching_a_rich_menu_tab_asks_the_question_again(engine: Engine) -> None:
    # LINE's postback for a richmenuswitch action carries the new alias in its params.
    switched = engine.postback(
        "U1", area(engine, "guest", 0), {"newRichMenuAliasId": "member", "status": "SUCCESS"}
    )
    assert switched.texts == [QUESTION]
    assert switched.labels == ["アロマ60分", "アロマ90分"]
    assert engine.conversation("U1") == {"flow": "booking", "state": "menu", "status": "active"}


def test_a_menu_area_says_its_piece_then_the_question_comes_back(engine: Engine) -> None:
    tapped = engine.postback("U1", area(engine, "guest", 1))
    assert tapped.texts == ["0 ptです", QUESTION]
    assert tapped.labels == ["アロマ60分", "アロマ90分"]


def test_a_button_of_an_earlier_question_brings_back_the_current_one(engine: Engine) -> None:
    engine.tap("U1", "booking", "menu", 0)  # on to the second question
    stale = engine.postback("U1", choice_data("booking", "menu", 1))
    assert stale.texts == ["ご希望の日は?"]
    assert engine.conversation("U1") == {"flow": "booking", "state": "when", "status": "active"}


def test_an_answer_is_not_followed_by_the_old_question(engine: Engine) -> None:
    answered = engine.tap("U1", "booking", "menu", 1)
    assert answered.texts == ["ご希望の日は?"]  # the next question only, once


def test_a_postback_that_starts_another_flow_asks_that_flows_question_only(
    engine: Engine,
) -> None:
    engine.say("U1", "アンケート")  # now in the survey
    started = engine.postback("U1", "booking")  # the menu's ご予約 area: a new booking
    assert started.texts == [QUESTION]
    assert engine.conversation("U1") == {"flow": "booking", "state": "menu", "status": "active"}


def test_without_a_question_waiting_a_tab_switch_says_nothing(make_engine: MakeEngine) -> None:
    engine = make_engine(CATALOGUE)
    engine.follow("U1")
    assert engine.postback("U1", area(engine, "guest", 0), {"status": "SUCCESS"}).texts == []
