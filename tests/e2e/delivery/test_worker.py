"""The delivery worker against the emulator: retries with the same key, 409 as sent, 4xx as
failed, Retry-After, replies that fail become pushes, leases, blocked friends, SKIP LOCKED."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.delivery.sender import Sender
from bot.delivery.worker import DeliveryWorker
from storage.db import Database
from storage.models import OutboxMessage
from tests.e2e.bot.conftest import TEST_FLOWS
from tests.e2e.delivery.conftest import fault, follower, outbox, queue_push
from tests.support import Stack, start_stack


def worker_for(stack: Stack, **kwargs: int) -> DeliveryWorker:
    return DeliveryWorker(stack.db, stack.runtime.sender, **kwargs)


def test_5xx_is_retried_later_with_the_same_retry_key(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "お知らせ")
    fault(stack, path="/v2/bot/message/push", status=500, times=1)
    worker = worker_for(stack)
    first = worker.tick()
    assert first.outcomes == {"pending": 1}
    row = outbox(stack, row_id)
    assert row.status == "pending" and row.due_at > stack.clock.now()
    assert user.texts() == []
    assert worker.tick().claimed == 0  # not due yet
    stack.clock.advance(timedelta(minutes=10))
    assert worker.tick().outcomes == {"sent": 1}
    assert user.texts() == ["お知らせ"]
    requests_log = stack.emulator_get("/requests")["requests"]
    keys = [r["retry_key"] for r in requests_log if r["path"] == "/v2/bot/message/push"]
    assert len(keys) == 2 and keys[0] == keys[1] == outbox(stack, row_id).retry_key
    worker.close()


def test_accepted_but_answer_lost_counts_as_sent_once(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "一度だけ")
    fault(stack, path="/v2/bot/message/push", status=500, times=1, mode="accept_then_fail")
    worker = worker_for(stack)
    assert worker.tick().outcomes == {"pending": 1}
    stack.clock.advance(timedelta(minutes=10))
    assert worker.tick().outcomes == {"sent": 1}  # the retry got 409: already accepted
    assert [d["message"]["text"] for d in user.received()] == ["一度だけ"]
    assert outbox(stack, row_id).accepted_request_id
    worker.close()


def test_4xx_is_failed_with_lines_message(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "x")
    fault(
        stack,
        path="/v2/bot/message/push",
        status=400,
        times=1,
        message="The request body has 1 error(s)",
    )
    worker = worker_for(stack)
    assert worker.tick().outcomes == {"failed": 1}
    row = outbox(stack, row_id)
    assert row.status == "failed" and "The request body has 1 error(s)" in (row.error or "")
    worker.close()


def test_429_waits_at_least_retry_after(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "x")
    fault(stack, path="/v2/bot/message/push", status=429, times=1, retry_after=600)
    worker = worker_for(stack)
    assert worker.tick().outcomes == {"pending": 1}
    assert outbox(stack, row_id).due_at >= stack.clock.now() + timedelta(seconds=600)
    worker.close()


def test_monthly_quota_pauses_sending(stack: Stack) -> None:
    user = follower(stack)
    queue_push(stack, user, "a")
    queue_push(stack, user, "b")
    fault(
        stack,
        path="/v2/bot/message/push",
        status=429,
        times=1,
        message="You have reached your monthly limit.",
    )
    worker = worker_for(stack, threads=1, batch=1)
    worker.tick()
    assert stack.runtime.sender.paused(stack.clock.now())
    assert worker.tick().claimed == 0  # paused: nothing more is attempted
    stack.clock.advance(timedelta(hours=2))
    worker.drain()
    assert sorted(user.texts()) == ["a", "b"]
    worker.close()


def test_failed_reply_is_sent_as_a_push(stack: Stack) -> None:
    user = follower(stack)
    fault(stack, path="/v2/bot/message/reply", status=500, times=1)
    user.say("女性")  # the reply with the next question fails in the web process
    assert user.texts() == []
    with stack.db.read() as session:
        kinds = session.execute(
            select(OutboxMessage.kind, OutboxMessage.status).order_by(OutboxMessage.id)
        ).all()
    assert ("reply", "replaced") in kinds and ("push", "pending") in kinds
    worker = worker_for(stack)
    worker.drain()
    received = user.received()
    assert [d["message"]["text"] for d in received] == ["年齢を数字で教えてください"]
    assert received[0]["via"] == "push"
    worker.close()


def test_a_presumed_dead_senders_rows_are_reclaimed_after_the_lease(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "取り残し")
    dead = Sender(stack.db, stack.runtime.line, stack.clock)
    assert [r.id for r in dead.claim_due(10)] == [row_id]  # ...and then it "dies"
    worker = worker_for(stack)
    assert worker.tick().claimed == 0  # leased to the dead sender
    stack.clock.advance(timedelta(minutes=2))
    assert worker.tick().outcomes == {"sent": 1}
    # The dead sender waking up cannot overwrite the outcome.
    late = dead.attempt(outbox(stack, row_id))
    assert late.status in ("lost", "sent")
    assert outbox(stack, row_id).owner == stack.runtime.sender.owner
    assert user.texts().count("取り残し") == 1
    worker.close()


def test_blocked_friend_is_skipped(stack: Stack) -> None:
    user = follower(stack)
    [row_id] = queue_push(stack, user, "x")
    user.unfollow()
    worker = worker_for(stack)
    worker.tick()
    assert outbox(stack, row_id).status == "skipped"
    assert [
        r for r in stack.emulator_get("/requests")["requests"] if r["path"].endswith("/push")
    ] == []
    worker.close()


def test_two_workers_never_claim_the_same_row(stack: Stack) -> None:
    user = follower(stack)
    for i in range(40):
        queue_push(stack, user, f"m{i}")
    senders = [Sender(stack.db, stack.runtime.line, stack.clock) for _ in range(2)]
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def claim(index: int) -> None:
        barrier.wait()
        for _ in range(10):
            claimed[index] += [r.id for r in senders[index].claim_due(3)]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 40


@pytest.mark.slow
def test_worker_command_once_drains(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main
    from tests.support import SECRET, TOKEN

    # The command runs on the real clock: rows queued on the frozen one (a fixed day) would
    # be older than the retry key's 24 hours once that day is past, and given up.
    stack.clock.set(datetime.now(UTC))
    user = follower(stack)
    queue_push(stack, user, "CLI")
    monkeypatch.setenv("DATABASE_URL", stack.db.url)
    monkeypatch.setenv("LINE_CHANNEL_SECRET", SECRET)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", stack.emulator.url)
    monkeypatch.setenv("STEPLINE_FLOWS", str(stack.runtime.settings.flows_dir))
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert requests.get(f"{stack.emulator.url}/_emulator/health", timeout=5).ok
    assert user.texts() == ["CLI"]


@pytest.mark.slow
def test_configured_rate_limits_pace_the_sender(db: Database, clock: FrozenClock) -> None:
    # STEPLINE_RATE_LIMITS=push=5: with LINE (here the emulator) allowing 5 pushes a second,
    # 12 pushes take about a second and a half and none is refused.
    stack = start_stack(db, clock, TEST_FLOWS, rate_limits={"push": 5.0})
    try:
        user = follower(stack)
        rows = [row for n in range(12) for row in queue_push(stack, user, f"お知らせ{n}")]
        requests.put(
            f"{stack.emulator.url}/_emulator/rate_limits",
            json={"enabled": True, "limits": {"POST /v2/bot/message/push": 5}},
            timeout=10,
        ).raise_for_status()
        worker = worker_for(stack)
        started = time.monotonic()
        assert worker.tick().outcomes == {"sent": 12}
        elapsed = time.monotonic() - started
        limits = stack.emulator_get("/rate_limits")
        assert limits["limited_total"] == 0
        assert limits["endpoints"]["POST /v2/bot/message/push"]["allowed"] == 12
        assert elapsed >= 1.4  # 4 at once (95 % of the 5-request burst), then 5 a second
        assert sorted(user.texts()) == sorted(f"お知らせ{n}" for n in range(12))
        assert {outbox(stack, row_id).status for row_id in rows} == {"sent"}
        worker.close()
    finally:
        stack.stop()
