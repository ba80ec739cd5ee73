"""`stepline worker`'s ticks: a step or broadcast known to come due before the next tick runs
at its moment, not up to a tick later; steps that come due while a pass runs get another
pass."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import ColumnElement, func, select

from bot.clock import SystemClock
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from bot.scheduler.ticks import run_steps_on_time
from storage.db import Database
from storage.models import OutboxMessage
from tests.e2e.bot.conftest import StackFactory
from tests.e2e.delivery.killing import STEPLINE, wait_until_started, worker_env
from tests.support import SECRET, TOKEN, Stack, enroll_friend, write_flows

TICK = 6.0  # seconds: long, so a step sent on time cannot have been found by a tick

SEQUENCE = """\
sequence: reminder
steps:
  - {after: 0m, text: お時間です}
"""


def enroll(db: Database, user_id: str, due: datetime, now: datetime | None = None) -> None:
    with db.write() as session:
        enroll_friend(session, user_id, "reminder", due, now or datetime.now(UTC))


@contextlib.contextmanager
def ticking_worker(env: dict[str, str], log: Path) -> Iterator[None]:
    """A `stepline worker --tick TICK` process, up (its first ticks ran) inside the block and
    stopped after; its log goes to `log`."""
    with log.open("w") as err:
        worker = subprocess.Popen(
            [STEPLINE, "worker", "--tick", str(TICK)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_until_started(log)
        yield
    finally:
        worker.terminate()
        worker.wait(30)


def first_sent_at(db: Database, *where: ColumnElement[bool]) -> datetime | None:
    """When the first outbox row (matching `where`) was accepted, waiting for it up to three
    ticks and 30 s; None if none was."""
    deadline = time.monotonic() + 3 * TICK + 30
    while time.monotonic() < deadline:
        with db.read() as session:
            sent = session.scalar(
                select(OutboxMessage.sent_at).where(OutboxMessage.status == "sent", *where)
            )
        if sent is not None:
            return sent
        time.sleep(0.1)
    return None


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_step_due_between_ticks_is_sent_at_its_moment(db: Database, tmp_path: Path) -> None:
    flows = write_flows(tmp_path, reminder=SEQUENCE)
    emulator = ServerThread(
        create_emulator_app(
            EmulatorConfig(channel_secret=SECRET, channel_access_token=TOKEN, clock=SystemClock())
        )
    ).start()
    base = f"{emulator.url}/_emulator"
    log = tmp_path / "worker.log"
    try:
        user = requests.post(f"{base}/users", json={"name": "花子"}, timeout=10).json()["user_id"]
        requests.post(f"{base}/users/{user}/follow", timeout=10).raise_for_status()
        with ticking_worker(worker_env(db.url, emulator.url, flows), log):
            # The worker's first ticks run as it starts; the next come every TICK seconds.
            # A step due 2 s from now is seen by the tick around TICK, due before the one
            # after: the worker wakes for it at its moment.
            due = datetime.now(UTC) + timedelta(seconds=TICK + 2)
            enroll(db, user, due)
            sent = first_sent_at(db)
        assert sent is not None, log.read_text(errors="replace")[-2000:]
        late = (sent - due).total_seconds()
        # At its moment, not before, and not at the next tick (about TICK - 2 s later).
        assert 0 <= late < 2.0, f"sent {late:.2f} s after its due moment"
        texts = [
            m["message"]["text"]
            for m in requests.get(f"{base}/users/{user}/messages", timeout=10).json()["messages"]
        ]
        assert texts == ["お時間です"]
    finally:
        emulator.stop()


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    return make_stack(write_flows(tmp_path, reminder=SEQUENCE))


def steps_job(scheduler: BackgroundScheduler, next_run: datetime) -> None:
    """The worker's steps tick, next due at `next_run` (the scheduler is not started)."""
    scheduler.add_job(lambda: None, "interval", seconds=60, id="steps", next_run_time=next_run)


def sent_steps(stack: Stack) -> int:
    with stack.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_steps_that_came_due_during_a_pass_get_another_pass_at_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = stack.user("花子")
    user.follow()
    due = stack.clock.now()
    enroll(stack.db, user.user_id, due, now=due)
    frozen = stack.clock.now
    # The pass reads the clock just before the step's moment; by its end the step is due.
    readings = iter([due - timedelta(seconds=1)] * 2)
    monkeypatch.setattr(stack.clock, "now", lambda: next(readings, None) or frozen())
    scheduler = BackgroundScheduler()
    next_tick = datetime.now(UTC) + timedelta(seconds=60)
    steps_job(scheduler, next_tick)
    with ThreadPoolExecutor(2) as pool:
        run_steps_on_time(scheduler, stack.runtime, pool)
    assert sent_steps(stack) == 1
    job = scheduler.get_job("steps")
    assert job is not None and job.next_run_time == next_tick  # nothing left to wake for


def test_a_step_due_before_the_next_tick_brings_the_tick_forward(stack: Stack) -> None:
    user = stack.user("花子")
    user.follow()
    now = stack.clock.now()
    enroll(stack.db, user.user_id, now + timedelta(seconds=30), now=now)
    scheduler = BackgroundScheduler()
    steps_job(scheduler, datetime.now(UTC) + timedelta(seconds=60))
    with ThreadPoolExecutor(2) as pool:
        run_steps_on_time(scheduler, stack.runtime, pool)
    assert sent_steps(stack) == 0  # not due yet
    job = scheduler.get_job("steps")
    assert job is not None
    ahead = (job.next_run_time - datetime.now(UTC)).total_seconds()
    assert 25 < ahead <= 30  # the step's moment (the test's clock is frozen), not the tick's


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_broadcast_due_between_ticks_starts_at_its_moment(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack(write_flows(tmp_path, reminder=SEQUENCE))
    user = stack.user("花子")
    user.follow()
    user.received()
    log = tmp_path / "worker.log"
    env = worker_env(stack.db.url, stack.emulator.url, stack.runtime.settings.flows_dir)
    with ticking_worker(env, log):
        # Seen by the broadcasts tick around TICK, due before the one after it.
        due = datetime.now(UTC) + timedelta(seconds=TICK + 2)
        response = stack.api(
            "POST",
            "/broadcasts",
            json={
                "segment": {"followed_within": "3650d"},
                "messages": [{"text": "本日限りのお知らせ"}],
                "send_at": due.isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        sent = first_sent_at(stack.db, OutboxMessage.cause.like("broadcast:%"))
    assert sent is not None, log.read_text(errors="replace")[-2000:]
    late = (sent - due).total_seconds()
    # At its moment, not before, and not at the next tick (about TICK - 2 s later).
    assert 0 <= late < 2.0, f"sent {late:.2f} s after its send_at"
    assert user.texts() == ["本日限りのお知らせ"]
