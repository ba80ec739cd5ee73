"""`stepline worker`'s ticks: a step known to come due before the next tick runs at its
moment, not up to a tick later."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.clock import SystemClock
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.http_server import ServerThread
from storage.db import Database
from storage.models import Friend, OutboxMessage, SequenceEnrollment
from tests.delivery.killing import STEPLINE, wait_until_started, worker_env
from tests.support import SECRET, TOKEN

TICK = 6.0  # seconds: long, so a step sent on time cannot have been found by a tick

SEQUENCE = """\
sequence: reminder
steps:
  - {after: 0m, text: お時間です}
"""


def enroll(db: Database, user_id: str, due: datetime) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        friend = Friend(
            line_user_id=user_id,
            display_name="",
            status="following",
            followed_at=now,
            created_at=now,
        )
        session.add(friend)
        session.flush()
        session.add(
            SequenceEnrollment(
                friend_id=friend.id,
                sequence="reminder",
                status="active",
                started_at=now,
                next_step=0,
                next_due_at=due,
                updated_at=now,
                reason="test",
            )
        )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_step_due_between_ticks_is_sent_at_its_moment(db: Database, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "reminder.yaml").write_text(SEQUENCE, encoding="utf-8")
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
        env = worker_env(db.url, emulator.url, flows)
        with log.open("w") as err:
            worker = subprocess.Popen(
                [STEPLINE, "worker", "--tick", str(TICK)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            wait_until_started(log)
            # The worker's first ticks run as it starts; the next come every TICK seconds.
            # A step due 2 s from now is seen by the tick around TICK, due before the one
            # after: the worker wakes for it at its moment.
            due = datetime.now(UTC) + timedelta(seconds=TICK + 2)
            enroll(db, user, due)
            deadline = time.monotonic() + 3 * TICK + 30
            sent = None
            while sent is None and time.monotonic() < deadline:
                with db.read() as session:
                    sent = session.scalar(
                        select(OutboxMessage.sent_at).where(OutboxMessage.status == "sent")
                    )
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait(30)
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
