"""Every planned (step, friend) accepted by LINE exactly once, while the emulator injects 5xx,
429 and accepted-then-dropped responses and the worker process is killed with SIGKILL at
random: steps are planned into the outbox and sent by the same killed-and-restarted workers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from bot.clock import SystemClock
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from storage.db import Database
from storage.models import OutboxMessage, SequenceEnrollment
from tests.e2e.delivery.killing import kill_workers_until_done, worker_env
from tests.support import SECRET, TOKEN, enroll_friend, write_flows

FRIENDS = 40


SEQUENCE = """\
sequence: drip
steps:
  - {after: 0m, text: step0}
  - {after: 0m, text: step1}
  - {after: 0m, text: "step2 {{ friend.line_user_id }}"}
  - {after: 0m, text: step3}
  - {after: 0m, text: "step4 {{ friend.line_user_id }}"}
"""


def plan(db: Database, users: list[str]) -> None:
    """Every friend enrolled in a five-step sequence, all due now: three identical steps (sent
    as multicast) and two personal ones (pushes). The worker plans each step into the outbox
    and sends it; both happen under the SIGKILLs."""
    now = datetime.now(UTC)
    with db.write() as session:
        for user_id in users:
            enroll_friend(session, user_id, "drip", now, now)


def unfinished(db: Database) -> int:
    """Steps not yet planned plus outbox rows not yet accepted."""
    with db.read() as session:
        rows = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")))
        )
        steps = session.scalar(
            select(func.count())
            .select_from(SequenceEnrollment)
            .where(SequenceEnrollment.status == "active")
        )
        return int(rows or 0) + int(steps or 0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_planned_send_accepted_exactly_once_through_faults_and_sigkill(
    db: Database, tmp_path: Path
) -> None:
    flows = write_flows(tmp_path, drip=SEQUENCE)
    workers_at_once = 1 if db.is_sqlite else 2
    emulator = ServerThread(
        create_emulator_app(
            EmulatorConfig(channel_secret=SECRET, channel_access_token=TOKEN, clock=SystemClock())
        )
    ).start()
    base = f"{emulator.url}/_emulator"
    try:
        users = []
        for i in range(FRIENDS):
            user = requests.post(f"{base}/users", json={"name": f"u{i}"}, timeout=10).json()
            # Friends of the account at LINE; no webhook target, so follow is just state.
            requests.post(f"{base}/users/{user['user_id']}/follow", timeout=10)
            users.append(user["user_id"])
        plan(db, users)
        requests.put(
            f"{base}/chaos",
            json={
                "rates": {"5xx": 0.05, "accept_then_drop": 0.05, "429": 0.02},
                "retry_after": 1,
                # Slow enough that the workers are killed in the middle of the work.
                "latency_ms": {"min": 100, "max": 400},
                "paths": ["/v2/bot/message/push", "/v2/bot/message/multicast"],
                "seed": 7,
            },
            timeout=10,
        ).raise_for_status()
        env = worker_env(db.url, emulator.url, flows)
        kills = kill_workers_until_done(
            lambda: unfinished(db) > 0, env, tmp_path, at_once=workers_at_once, seed=11
        )
        assert unfinished(db) == 0, "the workers did not finish in time"
        assert kills >= 3

        chaos = requests.get(f"{base}/chaos", timeout=10).json()
        delivered = requests.get(
            f"{base}/deliveries/counts", params={"via": "push,multicast"}, timeout=10
        ).json()

        def expected(user_id: str) -> dict[str, int]:
            tail = user_id  # the whole id: a shorter tail can collide between friends
            return {"step0": 1, "step1": 1, f"step2 {tail}": 1, "step3": 1, f"step4 {tail}": 1}

        wrong = {u: delivered.get(u) for u in users if delivered.get(u) != expected(u)}
        assert not wrong, f"not exactly once: {wrong}"
        with db.read() as session:
            statuses = Counter(session.scalars(select(OutboxMessage.status)))
            kinds = Counter(session.scalars(select(OutboxMessage.kind)))
        assert set(statuses) == {"sent"}
        assert kinds["push"] == FRIENDS * 2 and kinds["multicast"] >= 3
        # The faults really happened.
        injected = chaos["counters"]["injected_total"]
        assert injected.get("5xx", 0) and injected.get("accept_then_drop", 0), chaos
    finally:
        emulator.stop()
