"""A questionnaire (アンケート) through the engine alone: questions, choices, typed input,
branches, skipped steps, completion and timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.catalogue.postbacks import choice_data
from tests.unit.engine.conftest import Engine, MakeEngine

WELCOME = """
    fields:
      gender: {type: choice, choices: [female, male, other]}
      age: {type: integer, min: 0, max: 120}
    tags: [女性, 男性, 30代, 40代, 産後ケア, 腰痛, 更年期, 回答済み, 途中離脱, 年齢不明]
    ---
    flow: welcome
    title: はじめてのアンケート
    start_on: [{follow: new}]
    timeout: 24h
    steps:
      - ask: gender
        text: "{{ friend.name }}さん、性別を教えてください"
        choices:
          - {label: 女性, do: [{tag: 女性}, {set: {gender: female}}]}
          - {label: 男性, do: [{tag: 男性}, {set: {gender: male}}]}
      - ask: age
        text: 年齢を数字で教えてください
        input: integer
        save: age
        invalid: "半角数字でお願いします(例: 35)"
        max_retries: 2
        on_invalid: [{tag: 年齢不明}]
        do: [{tag_by: {field: age, ranges: {30代: [30, 39], 40代: [40, 49]}}}]
      - ask: concern
        when: {tag: 女性}
        text: 気になることは?
        choices:
          - {label: 産後ケア, do: [{tag: 産後ケア}]}
          - {label: 腰痛, do: [{tag: 腰痛}], next: end}
        next: [{if: {field: age, gte: 40}, goto: menopause}, {goto: end}]
      - ask: menopause
        text: 更年期のお悩みはありますか?
        choices: [{label: はい, do: [{tag: 更年期}]}, {label: いいえ}]
    on_complete: [{tag: 回答済み}, {say: "ありがとうございました!"}]
    on_timeout: [{tag: 途中離脱}]
    """

FEMALE, MALE = 0, 1


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(WELCOME)


def test_follow_asks_the_first_question_with_its_quick_replies(engine: Engine) -> None:
    asked = engine.follow("U1", name="花子")
    assert asked.texts == ["花子さん、性別を教えてください"]
    assert asked.labels == ["女性", "男性"]
    assert asked.quick_replies[0] == {
        "type": "postback",
        "label": "女性",
        "data": choice_data("welcome", "gender", FEMALE),
        "displayText": "女性",
    }
    assert engine.conversation("U1") == {"flow": "welcome", "state": "gender", "status": "active"}


def test_tapping_a_choice_tags_the_friend_and_asks_the_next_question(engine: Engine) -> None:
    engine.follow("U1")
    asked = engine.tap("U1", "welcome", "gender", FEMALE)
    assert asked.texts == ["年齢を数字で教えてください"]
    assert asked.quick_replies == []
    assert engine.tags("U1") == {"女性"}
    assert engine.fields("U1") == {"gender": "female"}
    assert engine.conversation("U1") == {"flow": "welcome", "state": "age", "status": "active"}


def test_next_rules_branch_on_the_age_each_way(engine: Engine) -> None:
    for user, age in (("U40", "42"), ("U35", "35")):
        engine.follow(user)
        engine.tap(user, "welcome", "gender", FEMALE)
        assert engine.say(user, age).texts == ["気になることは?"]

    assert engine.tap("U40", "welcome", "concern", 0).texts == ["更年期のお悩みはありますか?"]
    assert engine.tap("U35", "welcome", "concern", 0).texts == ["ありがとうございました!"]
    assert engine.tags("U40") == {"女性", "40代", "産後ケア"}
    assert engine.tags("U35") == {"女性", "30代", "産後ケア", "回答済み"}


def test_a_choice_next_overrides_the_step_rules(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", FEMALE)
    engine.say("U1", "42")
    assert engine.tap("U1", "welcome", "concern", 1).texts == ["ありがとうございました!"]
    assert "腰痛" in engine.tags("U1")


def test_when_false_skips_the_step_and_its_next_rules_still_apply(engine: Engine) -> None:
    # `concern` is for women only: a man goes on by its `next` rules without being asked.
    for user in ("U35", "U45"):
        engine.follow(user)
        engine.tap(user, "welcome", "gender", MALE)
    assert engine.say("U35", "35").texts == ["ありがとうございました!"]
    assert engine.say("U45", "45").texts == ["更年期のお悩みはありますか?"]


def test_completion_runs_on_complete_and_ends_the_conversation(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", FEMALE)
    engine.say("U1", "42")
    engine.tap("U1", "welcome", "concern", 0)
    done = engine.tap("U1", "welcome", "menopause", 0)
    assert done.texts == ["ありがとうございました!"]
    assert engine.tags("U1") == {"女性", "40代", "産後ケア", "更年期", "回答済み"}
    assert engine.fields("U1") == {"gender": "female", "age": 42}
    assert engine.conversation("U1") == {"flow": "welcome", "state": "end", "status": "completed"}


# ---------------------------------------------------------------------------- typed input


def test_integer_input_is_saved_and_full_width_digits_count(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", FEMALE)
    assert engine.say("U1", "３５").texts == ["気になることは?"]
    assert engine.fields("U1")["age"] == 35
    assert "30代" in engine.tags("U1")  # the step's `do` ran after the value was saved


def test_invalid_input_is_asked_again_then_on_invalid_and_skipped(engine: Engine) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", FEMALE)
    again = ["半角数字でお願いします(例: 35)", "年齢を数字で教えてください"]
    assert engine.say("U1", "abc").texts == again
    assert engine.say("U1", "200").texts == again  # an integer, but above the field's max
    assert engine.conversation("U1") == {"flow": "welcome", "state": "age", "status": "active"}

    # max_retries: 2 → the third wrong answer gives up: on_invalid, then the next step.
    assert engine.say("U1", "たくさん").texts == ["気になることは?"]
    assert "年齢不明" in engine.tags("U1")
    assert "age" not in engine.fields("U1")


def test_a_choice_question_answered_with_other_text_is_asked_again(engine: Engine) -> None:
    engine.follow("U1")
    again = engine.say("U1", "どちらでもない")
    assert again.texts == ["下のボタンからお選びください", "花子さん、性別を教えてください"]
    assert again.labels == ["女性", "男性"]


def test_typing_a_choice_label_counts_as_tapping_it(engine: Engine) -> None:
    engine.follow("U1")
    assert engine.say("U1", " 男性 ").texts == ["年齢を数字で教えてください"]
    assert engine.tags("U1") == {"男性"}
    assert engine.fields("U1") == {"gender": "male"}


def test_a_button_of_an_earlier_question_changes_nothing_and_asks_the_current_one(
    engine: Engine,
) -> None:
    engine.follow("U1")
    engine.tap("U1", "welcome", "gender", FEMALE)
    stale = engine.tap("U1", "welcome", "gender", MALE)
    assert stale.texts == ["年齢を数字で教えてください"]  # asked again: its quick replies are gone
    assert engine.tags("U1") == {"女性"}
    assert engine.conversation("U1") == {"flow": "welcome", "state": "age", "status": "active"}


# ---------------------------------------------------------------------------- timeout


def test_each_question_gives_the_friend_the_full_timeout(engine: Engine) -> None:
    engine.follow("U1")
    engine.advance(timedelta(hours=23))
    assert engine.tap("U1", "welcome", "gender", FEMALE).texts == ["年齢を数字で教えてください"]
    engine.advance(timedelta(hours=23))  # 46 h after the follow, 23 h after the last question
    assert engine.say("U1", "35").texts == ["気になることは?"]


def test_an_answer_after_the_timeout_finds_the_flow_abandoned(engine: Engine) -> None:
    engine.follow("U1")
    engine.advance(timedelta(hours=24))
    assert engine.tap("U1", "welcome", "gender", FEMALE).messages == []  # a stale button now
    assert engine.tags("U1") == {"途中離脱"}  # on_timeout ran; the late answer did not count
    assert engine.conversation("U1") == {
        "flow": "welcome",
        "state": "gender",
        "status": "abandoned",
    }


def test_a_timed_out_flow_is_abandoned_without_a_message(engine: Engine) -> None:
    # What the worker's sweep (bot.services.timeouts) does in the friend's turn.
    engine.follow("U1")
    engine.advance(timedelta(hours=24, minutes=1))
    with engine.turn("U1") as turn:
        assert engine.dispatcher.current(turn) is None
        engine.dispatcher.finish(turn)
    assert engine.conversation("U1") == {
        "flow": "welcome",
        "state": "gender",
        "status": "abandoned",
    }
    assert engine.tags("U1") == {"途中離脱"}
