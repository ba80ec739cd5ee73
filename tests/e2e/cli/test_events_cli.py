"""`stepline events failed` and `stepline events retry`, as a person runs them."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli import main
from storage.db import Database
from storage.models import WebhookEvent
from tests.e2e.bot.conftest import TEST_FLOWS


def run(db: Database, *args: str) -> Result:
    """The command as a person runs it (its settings from the environment), in-process: a
    new interpreter per call would spend seconds importing the LINE SDK."""
    env = {"DATABASE_URL": db.url, "STEPLINE_FLOWS": str(TEST_FLOWS), "COLUMNS": "200"}
    return CliRunner().invoke(main, ["events", *args], env=env, catch_exceptions=False)


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


def test_failed_events_are_listed_and_retried(db: Database) -> None:
    failed = add_event(db, "FAILED1", "failed")
    other = add_event(db, "FAILED2", "failed")
    done = add_event(db, "DONE1", "done")
    listed = run(db, "failed")
    assert listed.exit_code == 0, listed.output
    assert "2 failed event(s)" in listed.output
    assert "RuntimeError: boom" in listed.output
    assert "2026-12-01 12:00:00" in listed.output  # the account's time zone (Asia/Tokyo)

    retried = run(db, "retry", str(failed))
    assert retried.exit_code == 0, retried.output
    assert "1 event(s) queued again" in retried.output
    with db.read() as session:
        row = session.get(WebhookEvent, failed)
        assert row is not None
        assert (row.status, row.attempts, row.owner) == ("received", 0, None)

    wrong = run(db, "retry", str(done))
    assert wrong.exit_code == 1
    assert "not failed events" in wrong.output

    assert run(db, "retry").exit_code == 1  # neither ids nor --all: says what to give
    everything = run(db, "retry", "--all")
    assert "1 event(s) queued again" in everything.output
    with db.read() as session:
        statuses = dict(session.execute(select(WebhookEvent.id, WebhookEvent.status)).all())
    assert statuses == {failed: "received", other: "received", done: "done"}
    assert "no failed events" in run(db, "failed").output
