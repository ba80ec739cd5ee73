"""Plain sequence steps run set-based: many friends per statement, multicasts of 500, each
friend's step once — also with two workers at once and mixed with personal steps."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import func, insert, select, update

from bot.runtime import Runtime
from bot.services import bulk_steps
from bot.services import due_steps as timeouts
from bot.services.due_steps import run_due_sequence_steps
from bot.web.app import create_app
from storage.models import Friend, OutboxMessage, SequenceEnrollment
from tests.e2e.bot.conftest import StackFactory
from tests.support import Stack, write_flows

TOKYO = ZoneInfo("Asia/Tokyo")

CAMPAIGN = """\
sequence: campaign
steps:
  - {after: 0m, text: いらっしゃいませ}
  - {after: 1d, at: "10:00", text: 翌日10時のご案内}
  - {after: 2d, text: "{{ friend.line_user_id }} 様へ"}
  - {after: 2d, text: 最後のご案内}
"""


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    return make_stack(write_flows(tmp_path, campaign=CAMPAIGN))


def enroll(
    stack: Stack, count: int, *, blocked: int = 0, sequence: str = "campaign", step: int = 0
) -> list[str]:
    """`count` friends (the first `blocked` of them blocked) enrolled now in `sequence`, with
    its `step` due now, known to the emulator as friends."""
    now = stack.clock.now()
    users = [f"U{uuid.uuid4().hex}" for _ in range(count)]
    requests.post(
        f"{stack.emulator.url}/_emulator/users/bulk", json={"user_ids": users}, timeout=30
    ).raise_for_status()
    with stack.db.write() as session:
        session.execute(
            insert(Friend),
            [
                {
                    "line_user_id": u,
                    "display_name": "",
                    "status": "blocked" if i < blocked else "following",
                    "followed_at": now,
                    "created_at": now,
                }
                for i, u in enumerate(users)
            ],
        )
        ids = session.scalars(select(Friend.id).where(Friend.line_user_id.in_(users))).all()
        session.execute(
            insert(SequenceEnrollment),
            [
                {
                    "friend_id": friend_id,
                    "sequence": sequence,
                    "status": "active",
                    "started_at": now,
                    "next_step": step,
                    "next_due_at": now,
                    "updated_at": now,
                    "reason": "test",
                }
                for friend_id in ids
            ],
        )
    return users


def counts(stack: Stack) -> dict[str, dict[str, int]]:
    response = requests.get(
        f"{stack.emulator.url}/_emulator/deliveries/counts",
        params={"via": "push,multicast"},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, dict[str, int]] = response.json()
    return result


def send_now(stack: Stack) -> bulk_steps.SendRows:
    """Send a pass's rows as soon as they are queued (the worker hands them to threads)."""

    def send(rows: list[OutboxMessage]) -> list[Future[Any]]:
        stack.runtime.sender.send_claimed(rows)
        return []

    return send


def requests_to(stack: Stack, path: str) -> list[dict[str, object]]:
    log = stack.emulator_get("/requests")["requests"]
    return [r for r in log if r["path"] == path]


def test_1200_friends_get_a_plain_step_as_three_multicasts(stack: Stack) -> None:
    users = enroll(stack, 1200)
    assert run_due_sequence_steps(stack.runtime) == 1200
    multicasts = requests_to(stack, "/v2/bot/message/multicast")
    assert sorted(len(r["body"]["to"]) for r in multicasts) == [200, 500, 500]  # type: ignore[index]
    assert requests_to(stack, "/v2/bot/message/push") == []
    delivered = counts(stack)
    assert all(delivered[u] == {"いらっしゃいませ": 1} for u in users)
    # Everyone moved on to step 1, due tomorrow at 10:00 Tokyo time (the `at` time).
    tomorrow_ten = datetime.combine(
        stack.clock.now().astimezone(TOKYO).date() + timedelta(days=1),
        datetime.min.time().replace(hour=10),
        tzinfo=TOKYO,
    )
    with stack.db.read() as session:
        planned = session.execute(
            select(
                SequenceEnrollment.next_step, SequenceEnrollment.next_due_at, func.count()
            ).group_by(SequenceEnrollment.next_step, SequenceEnrollment.next_due_at)
        ).all()
    assert [(step, due, n) for step, due, n in planned] == [(1, tomorrow_ten.astimezone(UTC), 1200)]
    assert run_due_sequence_steps(stack.runtime) == 0


def test_catch_up_sends_plain_and_personal_steps_once_each_in_order(stack: Stack) -> None:
    users = enroll(stack, 30, blocked=3)
    stack.clock.set(stack.clock.now() + timedelta(days=5))  # the worker was down five days
    assert run_due_sequence_steps(stack.runtime) == 27 * 4 + 3 * 4
    delivered = counts(stack)
    for user in users[3:]:
        assert delivered[user] == {
            "いらっしゃいませ": 1,
            "翌日10時のご案内": 1,
            f"{user} 様へ": 1,
            "最後のご案内": 1,
        }
        texts = [
            d["message"]["text"] for d in stack.emulator_get(f"/users/{user}/messages")["messages"]
        ]
        assert texts == ["いらっしゃいませ", "翌日10時のご案内", f"{user} 様へ", "最後のご案内"]
    assert all(user not in delivered for user in users[:3])  # blocked: nothing sent
    with stack.db.read() as session:
        statuses = session.scalars(select(SequenceEnrollment.status).distinct()).all()
    assert statuses == ["completed"]


def test_two_workers_at_once_plan_every_step_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stack.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time; this checks PostgreSQL's row locks")
    monkeypatch.setattr(bulk_steps, "CHUNK", 50)  # many chunks, so the two interleave
    users = enroll(stack, 600)
    stack.clock.set(stack.clock.now() + timedelta(days=5))
    second: Runtime = create_app(stack.runtime.settings, clock=stack.clock, db=stack.db).extensions[
        "stepline"
    ]
    ran: list[int] = []
    errors: list[BaseException] = []

    def work(runtime: Runtime) -> None:
        try:
            total = 0
            with ThreadPoolExecutor(4) as pool:
                while step := run_due_sequence_steps(runtime, executor=pool):
                    total += step
            ran.append(total)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in (stack.runtime, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(ran) == 600 * 4
    delivered = counts(stack)
    assert all(sum(delivered[u].values()) == 4 for u in users)
    assert all(set(delivered[u].values()) == {1} for u in users)
    with stack.db.read() as session:
        rows = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
    assert rows == 0


def test_many_small_chunks_reach_every_friend_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk claims after the ids the last one reached: with chunks of 7, 61 friends
    (4 blocked, who go the per-friend way) are each planned once, none left behind."""
    monkeypatch.setattr(bulk_steps, "CHUNK", 7)
    users = enroll(stack, 61, blocked=4)
    assert bulk_steps.run_bulk_steps(stack.runtime, send_now(stack)) == 57
    assert bulk_steps.run_bulk_steps(stack.runtime, send_now(stack)) == 0
    delivered = counts(stack)
    assert all(delivered.get(u) == {"いらっしゃいませ": 1} for u in users[4:])
    assert not any(u in delivered for u in users[:4])
    with stack.db.read() as session:
        steps = session.execute(
            select(SequenceEnrollment.next_step, func.count()).group_by(
                SequenceEnrollment.next_step
            )
        ).all()
    assert sorted(steps) == [(0, 4), (1, 57)]  # the blocked friends' steps were not moved


def test_the_first_chunk_is_smaller_so_its_multicast_leaves_sooner(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first claim takes `FIRST_CHUNK`, the rest `CHUNK`: with 3 and 7, 57 friends go as
    one multicast of 3, seven of 7 and the remaining 5, each friend in exactly one."""
    monkeypatch.setattr(bulk_steps, "CHUNK", 7)
    monkeypatch.setattr(bulk_steps, "FIRST_CHUNK", 3)
    users = enroll(stack, 57)
    assert bulk_steps.run_bulk_steps(stack.runtime, send_now(stack)) == 57
    multicasts = requests_to(stack, "/v2/bot/message/multicast")
    recipients = [r["body"]["to"] for r in multicasts]  # type: ignore[index]
    assert sorted(len(to) for to in recipients) == [3, 5, 7, 7, 7, 7, 7, 7, 7]
    assert sorted(u for to in recipients for u in to) == sorted(users)


def test_a_step_with_a_template_runs_in_bulk_rendered_for_each_friend(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 2 (`{{ friend.line_user_id }} 様へ`) has no `when` and no actions: the bulk pass
    renders it in each friend's own turn and pushes it, one per friend (in chunks of 7 here),
    the blocked left to the per-friend path."""
    monkeypatch.setattr(bulk_steps, "PERSONAL_CHUNK", 7)
    users = enroll(stack, 40, blocked=2, step=2)
    assert bulk_steps.run_bulk_steps(stack.runtime, send_now(stack)) == 38
    pushes = requests_to(stack, "/v2/bot/message/push")
    sent = {r["body"]["to"]: r["body"]["messages"] for r in pushes}  # type: ignore[index]
    assert sorted(sent) == sorted(users[2:])
    assert all(messages == [{"type": "text", "text": f"{u} 様へ"}] for u, messages in sent.items())
    assert requests_to(stack, "/v2/bot/message/multicast") == []
    with stack.db.read() as session:
        causes = session.scalars(select(OutboxMessage.cause).distinct()).all()
        steps = session.execute(
            select(SequenceEnrollment.next_step, func.count()).group_by(
                SequenceEnrollment.next_step
            )
        ).all()
    assert causes == ["sequence:campaign/2"]  # the bulk path's rows
    assert sorted(steps) == [(2, 2), (3, 38)]


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the sends handed to it and not finished; the most at once."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.lock = threading.Lock()
        self.unsent = self.most = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self.lock:
            self.unsent += 1
            self.most = max(self.most, self.unsent)

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.unsent -= 1

        return super().submit(run)


def test_planning_waits_while_too_many_rows_are_unsent(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning outruns one sender thread: with at most 10 rows unsent, a planner waits after
    handing over its chunk of 7 (memory stays flat however many personal steps are due)."""
    monkeypatch.setattr(timeouts, "MAX_UNSENT", 10)
    monkeypatch.setattr(bulk_steps, "PERSONAL_CHUNK", 7)
    users = enroll(stack, 80, step=2)
    with CountingExecutor(1) as executor:
        assert timeouts.run_due_sequence_steps(stack.runtime, executor=executor) == 80
    # Each planner (two side by side on PostgreSQL) may hand over one chunk before it waits.
    assert executor.most <= 10 + bulk_steps.PLANNERS * 7
    delivered = counts(stack)
    assert all(delivered[u] == {f"{u} 様へ": 1} for u in users)


GREETING = """\
sequence: greeting
steps:
  - {after: 0m, text: "{{ friend.name }}様、こんにちは"}
"""


def test_friends_whose_messages_render_the_same_share_a_multicast(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack(write_flows(tmp_path, greeting=GREETING))
    users = enroll(stack, 6, sequence="greeting")
    names = dict(zip(users, ["佐藤", "佐藤", "鈴木", "佐藤", "田中", "佐藤"], strict=True))
    with stack.db.write() as session:
        for user, name in names.items():
            session.execute(
                update(Friend).where(Friend.line_user_id == user).values(display_name=name)
            )
    assert bulk_steps.run_bulk_steps(stack.runtime, send_now(stack)) == 6
    [multicast] = requests_to(stack, "/v2/bot/message/multicast")
    assert sorted(multicast["body"]["to"]) == sorted(u for u, n in names.items() if n == "佐藤")  # type: ignore[index]
    assert multicast["body"]["messages"] == [{"type": "text", "text": "佐藤様、こんにちは"}]  # type: ignore[index]
    pushes = {
        r["body"]["to"]: r["body"]["messages"][0]["text"]
        for r in requests_to(stack, "/v2/bot/message/push")
    }  # type: ignore[index]
    assert pushes == {u: f"{n}様、こんにちは" for u, n in names.items() if n != "佐藤"}


def test_an_enrolment_locked_elsewhere_waits_for_the_next_pass(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A friend's own turn holds their enrolment: the bulk pass skips it (no waiting) and
    goes on past it; the next pass plans it."""
    if stack.db.is_sqlite:
        pytest.skip("PostgreSQL's row locks (SQLite has one writer at a time)")
    monkeypatch.setattr(bulk_steps, "CHUNK", 5)
    users = enroll(stack, 23)
    with stack.db.read() as session:
        held = session.scalars(
            select(SequenceEnrollment.id).order_by(SequenceEnrollment.id).offset(2).limit(1)
        ).one()
    send = send_now(stack)
    with stack.db.write() as other:
        other.execute(
            select(SequenceEnrollment).where(SequenceEnrollment.id == held).with_for_update()
        )
        assert bulk_steps.run_bulk_steps(stack.runtime, send) == 22
    assert bulk_steps.run_bulk_steps(stack.runtime, send) == 1
    delivered = counts(stack)
    assert all(delivered.get(u) == {"いらっしゃいませ": 1} for u in users)


def test_a_step_falling_due_during_a_tick_waits_and_then_runs_in_bulk(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick reads the clock once for both paths. Steps that come due after the bulk path
    looked are left to the next tick, which runs them in bulk, rather than taken friend by
    friend by the per-friend pass a moment later."""
    users = enroll(stack, 30)  # their first step is due now
    frozen = stack.clock.now
    readings = iter([frozen() - timedelta(seconds=1)])  # the tick starts just before
    monkeypatch.setattr(stack.clock, "now", lambda: next(readings, None) or frozen())
    assert run_due_sequence_steps(stack.runtime) == 0
    assert run_due_sequence_steps(stack.runtime) == 30
    with stack.db.read() as session:
        causes = session.scalars(select(OutboxMessage.cause).distinct()).all()
    assert causes == ["sequence:campaign/0"]  # the bulk path's rows (per friend: no "/0")
    delivered = counts(stack)
    assert all(delivered.get(u) == {"いらっしゃいませ": 1} for u in users)
