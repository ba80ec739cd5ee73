"""Step delivery (ステップ配信) and reminders: enrolment, due times in Tokyo time with `at` and
quiet hours, stopping, and running a due step."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.unit.engine.conftest import START, TOKYO, Engine, MakeEngine

CATALOGUE = """
    fields:
      reservation_at: {type: datetime}
    tags: [腰痛, 購入済み, クーポン送付]
    ---
    flow: welcome
    start_on: [{follow: new}]
    steps:
      - ask: concern
        text: 気になることは?
        choices: [{label: 腰痛, do: [{tag: 腰痛}]}, {label: 肩こり}]
    on_complete: [{say: ありがとうございました!}]
    ---
    keywords:
      - {match: 購入しました, do: [{tag: 購入済み}]}
      - {match: 予約変更, do: [{set: {reservation_at: "2026-11-30 15:00"}}]}
    ---
    sequence: welcome_steps
    start_on: [{flow_completed: welcome}]
    stop_on: [{tag_added: 購入済み}]
    quiet_hours: ["21:00", "09:00"]
    steps:
      - {after: 0m, text: ご登録ありがとうございます}
      - {after: 1d, at: "10:00", when: {tag: 腰痛}, text: 腰痛ケアコースのご案内です}
      - {after: 2d, at: "22:00", text: 夜の案内}
      - after: 3d
        at: "20:00"
        text: "{{ friend.name }}さんに限定クーポン"
        do: [{tag: クーポン送付}]
    ---
    sequence: reservation_reminder
    anchor: reservation_at
    start_on: [{field_set: reservation_at}]
    steps:
      - {before: 1d, at: "18:00", text: "明日 {{ fields.reservation_at | hm }} にお待ちしています"}
      - {before: 2h, text: まもなくご予約の時間です}
    """

LOW_BACK, STIFF_SHOULDERS = 0, 1


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(CATALOGUE)


def complete_welcome(engine: Engine, user: str = "U1", concern: int = LOW_BACK) -> None:
    engine.follow(user, name="花子")
    engine.tap(user, "welcome", "concern", concern)


def tokyo(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TOKYO)


def test_completing_the_flow_enrols_with_the_first_step_due_at_once(engine: Engine) -> None:
    assert engine.enrolment("U1", "welcome_steps") is None
    complete_welcome(engine)
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "active",
        "next_step": 0,
        "due": START,
    }


def test_steps_come_due_at_their_times_in_tokyo(engine: Engine) -> None:
    complete_welcome(engine)  # Monday 23 November, 10:00 in Tokyo
    assert engine.run_due_step("U1", "welcome_steps").texts == ["ご登録ありがとうございます"]
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "active",
        "next_step": 1,
        "due": tokyo(24, 10),  # after 1d, at 10:00
    }

    engine.move_to(tokyo(24, 9, 59))
    assert engine.run_due_step("U1", "welcome_steps").messages == []  # not yet
    engine.move_to(tokyo(24, 10))
    assert engine.run_due_step("U1", "welcome_steps").texts == ["腰痛ケアコースのご案内です"]

    # after 2d at 22:00 falls in the quiet hours (21:00–09:00): deferred to 09:00.
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "active",
        "next_step": 2,
        "due": tokyo(26, 9),
    }
    engine.move_to(tokyo(26, 9))
    assert engine.run_due_step("U1", "welcome_steps").texts == ["夜の案内"]

    engine.move_to(tokyo(26, 20))
    assert engine.run_due_step("U1", "welcome_steps").texts == ["花子さんに限定クーポン"]
    assert "クーポン送付" in engine.tags("U1")  # the step's `do` ran
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "completed",
        "next_step": 4,
        "due": None,
    }


def test_a_step_whose_when_is_false_is_passed_silently(engine: Engine) -> None:
    complete_welcome(engine, concern=STIFF_SHOULDERS)
    engine.run_due_step("U1", "welcome_steps")
    engine.move_to(tokyo(24, 10))
    assert engine.run_due_step("U1", "welcome_steps").messages == []
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "active",
        "next_step": 2,
        "due": tokyo(26, 9),  # after 2d at 22:00, deferred by the quiet hours
    }


def test_a_stop_on_tag_stops_the_sequence(engine: Engine) -> None:
    complete_welcome(engine)
    engine.say("U1", "購入しました")
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "stopped",
        "next_step": 0,
        "due": None,
    }
    engine.move_to(tokyo(30, 12))
    assert engine.run_due_step("U1", "welcome_steps").messages == []


def test_blocking_stops_every_sequence(engine: Engine) -> None:
    complete_welcome(engine)
    engine.unfollow("U1")
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "stopped",
        "next_step": 0,
        "due": None,
    }


def test_after_downtime_each_due_step_runs_once_late(engine: Engine) -> None:
    complete_welcome(engine)
    engine.move_to(tokyo(30, 12))
    sent = [engine.run_due_step("U1", "welcome_steps").texts for _ in range(5)]
    assert sent == [
        ["ご登録ありがとうございます"],
        ["腰痛ケアコースのご案内です"],
        ["夜の案内"],
        ["花子さんに限定クーポン"],
        [],
    ]


def test_a_late_step_found_inside_quiet_hours_waits_for_their_end(engine: Engine) -> None:
    """The worker was down (or the demo's clock jumped) past a step's moment into the night:
    the step is not pushed at 03:06 but waits for 09:00, the end of the quiet hours."""
    complete_welcome(engine)
    engine.run_due_step("U1", "welcome_steps")  # the first step, at once
    engine.move_to(tokyo(25, 3, 6))  # the 10:00 step of the 24th is found due at 03:06
    assert engine.run_due_step("U1", "welcome_steps").messages == []
    assert engine.enrolment("U1", "welcome_steps") == {
        "status": "active",
        "next_step": 1,
        "due": tokyo(25, 9),
    }
    engine.move_to(tokyo(25, 9))
    assert engine.run_due_step("U1", "welcome_steps").texts == ["腰痛ケアコースのご案内です"]


def test_late_policy_skip_records_the_step_instead_of_sending_it(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(CATALOGUE, late_policy="skip", late_grace=timedelta(hours=1))
    complete_welcome(engine)
    engine.move_to(START + timedelta(hours=2))
    ran = engine.run_due_step("U1", "welcome_steps")
    assert ran.messages == []
    (skipped,) = ran.skipped  # the service ending the turn records it (status skipped)
    assert skipped.messages == [{"type": "text", "text": "ご登録ありがとうございます"}]
    assert skipped.cause == "sequence:welcome_steps/0"
    assert skipped.due_at == START.astimezone(skipped.due_at.tzinfo)
    assert "late by 2:00:00" in skipped.reason


def test_a_reminder_is_planned_before_its_anchor(engine: Engine) -> None:
    engine.say("U1", "予約変更")  # sets reservation_at: 30 November 15:00 (Tokyo)
    assert engine.enrolment("U1", "reservation_reminder") == {
        "status": "active",
        "next_step": 0,
        "due": tokyo(29, 18),  # the day before, at 18:00
    }
    engine.move_to(tokyo(29, 18))
    reminded = engine.run_due_step("U1", "reservation_reminder")
    assert reminded.texts == ["明日 15:00 にお待ちしています"]
    assert engine.enrolment("U1", "reservation_reminder") == {
        "status": "active",
        "next_step": 1,
        "due": tokyo(30, 13),  # 2 hours before
    }
