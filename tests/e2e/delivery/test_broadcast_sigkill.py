"""A broadcast whose worker is killed with SIGKILL at random moments, while the emulator
injects faults, still reaches every recipient exactly once: the audience is frozen once, the
cursor resumes where the dead worker stopped, and claimed rows are re-sent with their keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, insert, select

from bot.clock import SystemClock
from bot.config import Settings
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from bot.runtime import Runtime
from bot.services.broadcasts import broadcast_status, create_broadcast
from storage.db import Database
from storage.models import Friend, OutboxMessage
from tests.e2e.delivery.killing import kill_workers_until_done, worker_env
from tests.support import SECRET, TOKEN

FRIENDS = 150


def unfinished(db: Database, broadcast_id: int, runtime: Runtime) -> bool:
    with db.read() as session:
        open_rows = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")))
        )
    return bool(open_rows) or broadcast_status(runtime, broadcast_id)["status"] != "done"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_broadcast_reaches_everyone_once_through_sigkill_and_faults(
    db: Database, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tags.yaml").write_text("tags: [冬]\n", encoding="utf-8")
    emulator = ServerThread(
        create_emulator_app(
            EmulatorConfig(channel_secret=SECRET, channel_access_token=TOKEN, clock=SystemClock())
        )
    ).start()
    base = f"{emulator.url}/_emulator"
    settings = Settings(
        database_url=db.url,
        channel_secret=SECRET,
        channel_access_token=TOKEN,
        line_api_base_url=emulator.url,
        line_data_api_base_url=emulator.url,
        flows_dir=flows,
    )
    runtime = Runtime(settings, db=db)
    try:
        users = [f"U{uuid.uuid4().hex}" for _ in range(FRIENDS)]
        requests.post(f"{base}/users/bulk", json={"user_ids": users}, timeout=30).raise_for_status()
        now = datetime.now(UTC)
        with db.write() as session:
            session.execute(
                insert(Friend),
                [
                    {
                        "line_user_id": u,
                        "display_name": "",
                        "status": "following",
                        "followed_at": now,
                        "created_at": now,
                    }
                    for u in users
                ],
            )
        # Personal text: one push per friend, so there is plenty to interrupt.
        broadcast = create_broadcast(
            runtime,
            segment={"followed_within": "1d"},
            messages=[{"text": "冬のご案内 {{ friend.line_user_id }}"}],
        )
        requests.put(
            f"{base}/chaos",
            json={
                "rates": {"5xx": 0.05, "accept_then_drop": 0.05},
                "latency_ms": {"min": 50, "max": 200},
                "paths": ["/v2/bot/message/push"],
                "seed": 3,
            },
            timeout=10,
        ).raise_for_status()
        # Eight batches of 20: kills land between them too.
        env = worker_env(db.url, emulator.url, flows, STEPLINE_BROADCAST_BATCH="20")
        kills = kill_workers_until_done(
            lambda: unfinished(db, broadcast.id, runtime),
            env,
            tmp_path,
            at_once=1 if db.is_sqlite else 2,
            seed=5,
        )
        assert not unfinished(db, broadcast.id, runtime), "the workers did not finish in time"
        assert kills >= 3

        delivered = requests.get(
            f"{base}/deliveries/counts", params={"via": "push"}, timeout=10
        ).json()
        wrong = {u: delivered.get(u) for u in users if delivered.get(u) != {f"冬のご案内 {u}": 1}}
        assert not wrong, f"not exactly once: {wrong}"
        status = broadcast_status(runtime, broadcast.id)
        assert (status["planned"], status["accepted"], status["failed"]) == (FRIENDS, FRIENDS, 0)
        injected = requests.get(f"{base}/chaos", timeout=10).json()["counters"]["injected_total"]
        assert injected.get("5xx", 0) and injected.get("accept_then_drop", 0)
    finally:
        runtime.close()
        emulator.stop()
