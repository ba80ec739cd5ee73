"""A `serve` process SIGKILLed after answering 200 loses no event: another process's sweep
(here `stepline worker`) finishes it once its lease runs out."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from storage.db import Database
from storage.models import Friend, WebhookEvent
from tests.e2e.bot.test_serve import STEPLINE, serve_process, wait_until


def event_statuses(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        with db.read() as session:
            return list(session.scalars(select(WebhookEvent.status)))
    finally:
        db.dispose()


@pytest.mark.slow
def test_serve_killed_after_its_200_loses_no_event(tmp_path: Path, db: Database) -> None:
    # `db` is emptied by the fixture: the statuses below are this test's alone.
    with serve_process(tmp_path, db.url, STEPLINE_EVENT_LEASE_SECONDS="2") as served:
        database_url = served.env["DATABASE_URL"]
        emulator, user_id = served.user.emulator_url, served.user.user_id
        # LINE is slow (every call takes 5 s): the follow's profile call holds the event in
        # processing, after the 200, when the process dies.
        requests.put(
            f"{emulator}/_emulator/chaos", json={"latency_ms": 5000}, timeout=10
        ).raise_for_status()
        answered = requests.post(f"{emulator}/_emulator/users/{user_id}/follow", timeout=10)
        assert answered.json()["status"] == 200  # acknowledged
        time.sleep(0.5)
        os.killpg(served.pid, signal.SIGKILL)  # master and workers, mid-event
        assert event_statuses(database_url) == ["received"]  # stored, not processed

        requests.put(f"{emulator}/_emulator/chaos", json={}, timeout=10).raise_for_status()
        with (tmp_path / "worker.log").open("wb") as out:
            worker = subprocess.Popen(
                [STEPLINE, "worker", "--tick", "0.2"], env=served.env, stdout=out, stderr=out
            )
        try:
            wait_until(lambda: event_statuses(database_url) == ["done"], timeout=30)

            def greetings() -> list[dict[str, object]]:
                return list(
                    requests.get(
                        f"{emulator}/_emulator/users/{user_id}/messages", timeout=5
                    ).json()["messages"]
                )

            wait_until(lambda: len(greetings()) == 1)
            time.sleep(0.5)
            assert len(greetings()) == 1  # once, not again
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    db_check = Database(database_url)
    try:
        with db_check.read() as session:
            friend = session.scalars(select(Friend)).one()
    finally:
        db_check.dispose()
    assert (friend.line_user_id, friend.display_name) == (user_id, "花子")
