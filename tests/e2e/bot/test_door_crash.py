"""A `serve` process SIGKILLed after answering 200 loses no event: another process's sweep
(here `stepline worker`) finishes it once its lease runs out."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from storage.db import Database
from storage.models import Friend, WebhookEvent
from tests.e2e.bot.conftest import TEST_FLOWS
from tests.e2e.bot.test_serve import STEPLINE, free_port, wait_until
from tests.support import SECRET, TOKEN


def event_statuses(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        with db.read() as session:
            return list(session.scalars(select(WebhookEvent.status)))
    finally:
        db.dispose()


@pytest.mark.slow
def test_serve_killed_after_its_200_loses_no_event(tmp_path: Path, db: Database) -> None:
    database_url = db.url  # emptied by the fixture: the statuses below are this test's
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    port = free_port()
    emulator = ServerThread(
        create_emulator_app(
            EmulatorConfig(
                channel_secret=SECRET,
                channel_access_token=TOKEN,
                webhook_url=f"http://127.0.0.1:{port}/callback",
            )
        )
    ).start()
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_BASE_URL=emulator.url,
        STEPLINE_FLOWS=str(flows),
        STEPLINE_EVENT_LEASE_SECONDS="2",
        STEPLINE_LOG_LEVEL="INFO",
    )
    upgrade = subprocess.run([STEPLINE, "db", "upgrade"], env=env, capture_output=True, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as out:
        serve = subprocess.Popen(
            [STEPLINE, "serve", "--port", str(port), "--workers", "1", "--threads", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: master and worker die together
        )
    worker: subprocess.Popen[bytes] | None = None
    try:
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        )
        # LINE is slow (every call takes 5 s): the follow's profile call holds the event in
        # processing, after the 200, when the process dies.
        requests.put(
            f"{emulator.url}/_emulator/chaos", json={"latency_ms": 5000}, timeout=10
        ).raise_for_status()
        user = requests.post(f"{emulator.url}/_emulator/users", json={"name": "花子"}, timeout=10)
        user_id = user.json()["user_id"]
        answered = requests.post(f"{emulator.url}/_emulator/users/{user_id}/follow", timeout=10)
        assert answered.json()["status"] == 200  # acknowledged
        time.sleep(0.5)
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait(timeout=10)
        assert event_statuses(database_url) == ["received"]  # stored, not processed

        requests.put(f"{emulator.url}/_emulator/chaos", json={}, timeout=10).raise_for_status()
        with (tmp_path / "worker.log").open("wb") as out:
            worker = subprocess.Popen(
                [STEPLINE, "worker", "--tick", "0.2"], env=env, stdout=out, stderr=out
            )
        wait_until(lambda: event_statuses(database_url) == ["done"], timeout=30)

        def greetings() -> list[dict[str, object]]:
            return list(
                requests.get(
                    f"{emulator.url}/_emulator/users/{user_id}/messages", timeout=5
                ).json()["messages"]
            )

        wait_until(lambda: len(greetings()) == 1)
        time.sleep(0.5)
        assert len(greetings()) == 1  # once, not again
        db = Database(database_url)
        try:
            with db.read() as session:
                friend = session.scalars(select(Friend)).one()
        finally:
            db.dispose()
        assert (friend.line_user_id, friend.display_name) == (user_id, "花子")
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        emulator.stop()
