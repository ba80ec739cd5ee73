"""Step sequences and reminders with a frozen clock: days of steps with `at` times and quiet
hours, stop on a purchase tag, a reminder moved when its anchor changes, catch-up after
downtime (each due step once)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.services.due_steps import run_due_sequence_steps
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import LineUser, Stack

TOKYO = ZoneInfo("Asia/Tokyo")

SEQUENCES = """\
fields:
  reservation_at: {type: datetime}
---
sequence: welcome_steps
start_on: [{flow_completed: welcome}]
stop_on: [{tag_added: 購入済み}, {blocked: true}]
quiet_hours: ["21:00", "09:00"]
steps:
  - {after: 0m, text: ご登録ありがとうございます}
  - {after: 1d, at: "10:00", when: {tag: 腰痛}, text: 腰痛ケアコースのご案内です}
  - {after: 2d, at: "22:00", text: 夜の案内}
  - {after: 3d, at: "20:00", text: "{{ friend.name }}さんに限定クーポン"}
---
sequence: reservation_reminder
anchor: reservation_at
steps:
  - {before: 1d, at: "18:00", text: "明日 {{ fields.reservation_at | hm }} にお待ちしています"}
  - {before: 2h, text: まもなくご予約の時間です}
"""


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "sequences.yaml").write_text(SEQUENCES, encoding="utf-8")
    return make_stack(flows)


def local(stack: Stack) -> datetime:
    return stack.clock.now().astimezone(TOKYO)


def move_to(stack: Stack, when: datetime) -> None:
    stack.clock.set(when.astimezone(TOKYO))


def complete_welcome(user: LineUser, concern: str = "腰痛") -> None:
    user.follow()
    user.tap("女性")
    user.say("35")
    user.tap(concern)
    user.received()


def pushed(user: LineUser) -> list[str]:
    return [d["message"]["text"] for d in user.received() if d["via"] == "push"]


def test_welcome_steps_over_days_with_at_times_and_quiet_hours(stack: Stack) -> None:
    start = local(stack)  # 2026-11-23 10:00 in Tokyo
    user = stack.user("花子")
    complete_welcome(user)  # 腰痛 → flow ends → enrolled in welcome_steps
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["ご登録ありがとうございます"]

    move_to(stack, start + timedelta(days=1) - timedelta(minutes=1))  # 11-24 09:59
    assert run_due_sequence_steps(stack.runtime) == 0
    move_to(stack, datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["腰痛ケアコースのご案内です"]

    # after 2d at 22:00 falls in the quiet hours (21:00–09:00): deferred to 09:00 next day.
    move_to(stack, datetime(2026, 11, 25, 22, 30, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    move_to(stack, datetime(2026, 11, 26, 9, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["夜の案内"]

    move_to(stack, datetime(2026, 11, 26, 20, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["花子さんに限定クーポン"]
    assert run_due_sequence_steps(stack.runtime) == 0


def test_step_when_false_is_skipped(stack: Stack) -> None:
    user = stack.user()
    complete_welcome(user, concern="産後ケア")  # not 腰痛
    run_due_sequence_steps(stack.runtime)
    user.received()
    move_to(stack, datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1  # ran, but its `when` was false
    assert pushed(user) == []


def test_purchase_tag_stops_the_sequence(stack: Stack) -> None:
    user = stack.user()
    complete_welcome(user)
    run_due_sequence_steps(stack.runtime)
    user.received()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["購入済み"]})
    move_to(stack, datetime(2026, 12, 1, 12, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    assert pushed(user) == []


def test_blocking_stops_the_sequence(stack: Stack) -> None:
    user = stack.user()
    complete_welcome(user)
    run_due_sequence_steps(stack.runtime)
    user.unfollow()
    move_to(stack, datetime(2026, 12, 1, 12, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0


def test_reminder_moves_with_its_anchor_and_stops_when_cleared(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()

    def reserve(at: str | None) -> None:
        response = stack.api(
            "PATCH", f"/friends/{user.user_id}", json={"fields": {"reservation_at": at}}
        )
        assert response.status_code == 200, response.text

    reserve("2026-11-30 15:00")
    move_to(stack, datetime(2026, 11, 29, 17, 59, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    reserve("2026-12-02 15:00")  # moved: the reminder is planned again
    move_to(stack, datetime(2026, 11, 29, 18, 30, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    move_to(stack, datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["明日 15:00 にお待ちしています"]
    move_to(stack, datetime(2026, 12, 2, 13, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["まもなくご予約の時間です"]

    reserve("2026-12-10 15:00")
    reserve(None)  # cancelled: the reminder stops
    move_to(stack, datetime(2026, 12, 10, 14, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    assert pushed(user) == []


def test_reminder_steps_already_past_are_skipped(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    # Reserved at 10:00 for 15:00 the same day: "the day before at 18:00" has passed.
    stack.api(
        "PATCH", f"/friends/{user.user_id}", json={"fields": {"reservation_at": "2026-11-23 15:00"}}
    )
    user.received()
    assert run_due_sequence_steps(stack.runtime) == 0
    move_to(stack, datetime(2026, 11, 23, 13, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["まもなくご予約の時間です"]


def test_the_friend_shows_each_waiting_step_and_when_it_goes(stack: Stack) -> None:
    user = stack.user("花子")
    complete_welcome(user)
    assert run_due_sequence_steps(stack.runtime) == 1
    assert stack.friend(user)["sequences"] == [
        {
            "sequence": "welcome_steps",
            "title": "welcome_steps",
            "next_step": 2,
            "steps": 4,
            "due_at": "2026-11-24T10:00:00+09:00",
        }
    ]


def test_late_steps_found_inside_quiet_hours_wait_for_their_end(stack: Stack) -> None:
    """The worker was down (or the demo's time machine jumped) past the steps' moments into
    the night: nothing is pushed inside the quiet hours; at 09:00 the steps go, in order.
    The first step is plain (the bulk path), the second has a `when` (friend by friend)."""
    user = stack.user("花子")
    complete_welcome(user)  # enrolled at 10:00; its first step is due at once
    move_to(stack, datetime(2026, 11, 23, 23, 30, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    assert pushed(user) == []
    move_to(stack, datetime(2026, 11, 24, 3, 6, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 0
    assert pushed(user) == []
    move_to(stack, datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["ご登録ありがとうございます"]
    move_to(stack, datetime(2026, 11, 25, 4, 0, tzinfo=TOKYO))  # the 24th's 10:00 step, late
    assert run_due_sequence_steps(stack.runtime) == 0
    move_to(stack, datetime(2026, 11, 25, 9, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["腰痛ケアコースのご案内です"]


def test_after_downtime_due_steps_are_sent_once_each(stack: Stack) -> None:
    user = stack.user()
    complete_welcome(user)
    move_to(stack, datetime(2026, 12, 5, 12, 0, tzinfo=TOKYO))  # the worker was down 12 days
    assert run_due_sequence_steps(stack.runtime) == 4
    assert pushed(user) == [
        "ご登録ありがとうございます",
        "腰痛ケアコースのご案内です",
        "夜の案内",
        "花子さんに限定クーポン",
    ]
    assert run_due_sequence_steps(stack.runtime) == 0
    assert pushed(user) == []


def test_late_step_policy_skip_keeps_a_record(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "sequences.yaml").write_text(SEQUENCES, encoding="utf-8")
    stack = make_stack(flows, late_steps="skip", late_steps_grace_seconds=3600.0)
    user = stack.user("花子")
    complete_welcome(user)
    move_to(stack, datetime(2026, 12, 5, 12, 0, tzinfo=TOKYO))  # every step is days late
    assert run_due_sequence_steps(stack.runtime) == 4
    assert pushed(user) == []
    from sqlalchemy import select

    from storage.models import OutboxMessage

    with stack.db.read() as session:
        skipped = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "skipped")
            .order_by(OutboxMessage.id)
        ).all()
    assert [row.messages[0]["text"] for row in skipped] == [
        "ご登録ありがとうございます",
        "腰痛ケアコースのご案内です",
        "夜の案内",
        "花子さんに限定クーポン",
    ]
    assert all("late by" in (row.error or "") for row in skipped)


def test_outside_event_starts_a_sequence(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "sequences.yaml").write_text(
        SEQUENCES
        + "---\nsequence: after_visit\nstart_on: [{event: visit_done}]\n"
        + 'steps:\n  - {after: 1d, at: "11:00", text: ご来店ありがとうございました}\n',
        encoding="utf-8",
    )
    stack = make_stack(flows)
    user = stack.user()
    user.follow()
    user.received()
    response = stack.api(
        "POST", "/events", json={"id": "v-1", "name": "visit_done", "user_id": user.user_id}
    )
    assert response.status_code == 200, response.text
    move_to(stack, datetime(2026, 11, 24, 11, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 1
    assert pushed(user) == ["ご来店ありがとうございました"]


def test_identical_steps_go_as_one_multicast_personal_ones_as_pushes(stack: Stack) -> None:
    users = [stack.user(name) for name in ("花子", "桜", "葵")]
    for user in users:
        complete_welcome(user)
    move_to(stack, datetime(2026, 11, 26, 20, 0, tzinfo=TOKYO))
    assert run_due_sequence_steps(stack.runtime) == 12
    requests_log = stack.emulator_get("/requests")["requests"]
    multicasts = [r for r in requests_log if r["path"] == "/v2/bot/message/multicast"]
    pushes = [r for r in requests_log if r["path"] == "/v2/bot/message/push"]
    # Three identical steps, each one multicast to the three friends; the step with
    # {{ friend.name }} differs per friend: three pushes.
    assert len(multicasts) == 3
    assert all(sorted(r["body"]["to"]) == sorted(u.user_id for u in users) for r in multicasts)
    assert len(pushes) == 3
    for user in users:
        texts = [d["message"]["text"] for d in user.received()]
        assert texts == [
            "ご登録ありがとうございます",
            "腰痛ケアコースのご案内です",
            "夜の案内",
            f"{user.name}さんに限定クーポン",
        ]
