"""`stepline events failed` and `stepline events retry`, as a person runs them."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import WebhookEvent
from tests.e2e.bot.conftest import TEST_FLOWS
from tests.e2e.bot.test_serve import STEPLINE


def run(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=db.url, STEPLINE_FLOWS=str(TEST_FLOWS), COLUMNS="200")
    return subprocess.run(
        [STEPLINE, "events", *args], env=env, capture_output=True, text=True, timeout=60
    )


def add_event(db: Database, event_id: str, status: str) -> int:
    with db.write() as session:
        row = WebhookEvent(
            webhook_event_id=event_id,
            type="message",
            line_user_id="U" + "1" * 32,
            payload={"type": "message"},
            status=status,
            error="RuntimeError: boom" if status == "failed" else None,
            attempts=5 if status == "failed" else 1,
            received_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        )
        session.add(row)
        session.flush()
        return row.id


@pytest.mark.slow
def test_failed_events_are_listed_and_retried(db: Database) -> None:
    failed = add_event(db, "FAILED1", "failed")
    other = add_event(db, "FAILED2", "failed")
    done = add_event(db, "DONE1", "done")
    listed = run(db, "failed")
    assert listed.returncode == 0, listed.stderr
    assert "2 failed event(s)" in listed.stdout
    assert "RuntimeError: boom" in listed.stdout
    assert "2026-12-01 12:00:00" in listed.stdout  # the account's time zone (Asia/Tokyo)

    retried = run(db, "retry", str(failed))
    assert retried.returncode == 0, retried.stderr
    assert "1 event(s) queued again" in retried.stdout
    with db.read() as session:
        row = session.get(WebhookEvent, failed)
        assert row is not None
        assert (row.status, row.attempts, row.owner) == ("received", 0, None)

    wrong = run(db, "retry", str(done))
    assert wrong.returncode == 1
    assert "not failed events" in wrong.stderr

    assert run(db, "retry").returncode == 1  # neither ids nor --all: says what to give
    everything = run(db, "retry", "--all")
    assert "1 event(s) queued again" in everything.stdout
    with db.read() as session:
        statuses = dict(session.execute(select(WebhookEvent.id, WebhookEvent.status)).all())
    assert statuses == {failed: "received", other: "received", done: "done"}
    assert "no failed events" in run(db, "failed").stdout
