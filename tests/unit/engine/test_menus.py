"""Which rich menu a friend sees, settled at the end of every turn (`show_when`, `rich_menu`),
and a tap on a menu area."""

from __future__ import annotations

import pytest

from bot.catalogue.richmenu_definition import tap_data
from tests.unit.engine.conftest import Engine, MakeEngine

CATALOGUE = """
    tags: [回答済み]
    ---
    rich_menu: guest
    size: compact
    default: true
    areas:
      - {bounds: [0, 0, 2500, 843], label: アンケート, tap: {postback: survey}}
    ---
    rich_menu: member
    size: compact
    show_when: {tag: 回答済み}
    areas:
      - {bounds: [0, 0, 2500, 843], label: ポイント, tap: {do: [{say: 会員さま専用メニューです}]}}
    ---
    flow: welcome
    start_on: [{follow: new}, {postback: survey}]
    steps:
      - ask: first
        text: ご来店は初めてですか?
        choices: [{label: はい}, {label: いいえ}]
    on_complete: [{tag: 回答済み}, {say: ありがとうございました!}]
    ---
    keywords:
      - {match: ゲストメニュー, do: [{rich_menu: guest}]}
      - {match: 再回答, do: [{untag: 回答済み}]}
    """


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    engine = make_engine(CATALOGUE)
    engine.follow("U1")
    return engine


def test_a_new_friend_sees_the_default_menu(engine: Engine) -> None:
    assert engine.friend("U1").rich_menu is None  # no per-user menu: the default shows


def test_a_show_when_tag_switches_the_menu(engine: Engine) -> None:
    answered = engine.tap("U1", "welcome", "first", 0)
    assert answered.link_menu
    assert engine.friend("U1").rich_menu == "member"
    assert not engine.say("U1", "こんにちは").link_menu  # unchanged: nothing to link

    assert engine.say("U1", "再回答").link_menu  # the tag is gone: back to the default
    assert engine.friend("U1").rich_menu is None


def test_a_rich_menu_action_wins_until_the_rules_choose_otherwise(engine: Engine) -> None:
    engine.tap("U1", "welcome", "first", 0)
    assert engine.say("U1", "ゲストメニュー").link_menu
    friend = engine.friend("U1")
    assert (friend.rich_menu, friend.rich_menu_rule) == ("guest", "member")
    engine.say("U1", "こんにちは")  # an unrelated turn does not undo the friend's choice
    assert engine.friend("U1").rich_menu == "guest"


def test_tapping_a_menu_area_runs_its_actions(engine: Engine) -> None:
    engine.tap("U1", "welcome", "first", 0)
    area = engine.catalogue.rich_menus["member"].areas[0]
    tapped = engine.postback("U1", tap_data("member", 0, area))
    assert tapped.texts == ["会員さま専用メニューです"]


def test_an_area_postback_starts_the_flow_that_starts_on_it(engine: Engine) -> None:
    engine.tap("U1", "welcome", "first", 0)
    assert engine.postback("U1", "survey").texts == ["ご来店は初めてですか?"]
