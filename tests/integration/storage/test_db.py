"""Storage on SQLite and PostgreSQL: migrations match the models, times stay UTC, uniques hold."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import Base, Friend, WebhookEvent
from storage.upsert import insert_ignore
from tests.conftest import POSTGRES_URL


def test_migrations_create_exactly_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_datetimes_round_trip_as_aware_utc(db: Database) -> None:
    jst = timezone(timedelta(hours=9))
    with db.write() as session:
        session.add(
            Friend(
                line_user_id="U1",
                display_name="花子",
                created_at=datetime(2026, 1, 2, 9, 0, tzinfo=jst),
            )
        )
    with db.read() as session:
        friend = session.scalars(select(Friend)).one()
    assert friend.created_at == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert friend.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive"), db.write() as session:
        session.add(Friend(line_user_id="U2", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_webhook_event_ids_are_unique(db: Database) -> None:
    row = {
        "webhook_event_id": "01HX",
        "type": "message",
        "payload": {},
        "status": "done",
        "received_at": datetime.now(UTC),
        "is_redelivery": False,
    }
    with db.write() as session:
        assert insert_ignore(session, WebhookEvent.__table__, row, ["webhook_event_id"])
        assert not insert_ignore(session, WebhookEvent.__table__, row, ["webhook_event_id"])
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(WebhookEvent(**row))


def test_sqlite_uses_wal_and_immediate_transactions(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
    # Two writers at once: the second waits for the first instead of failing with "locked".
    order: list[str] = []
    started = threading.Event()

    def first() -> None:
        with db.write() as session:
            session.execute(text("INSERT INTO tags (name) VALUES ('a')"))
            started.set()
            threading.Event().wait(0.3)
            order.append("first")

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    with db.write() as session:
        session.execute(text("INSERT INTO tags (name) VALUES ('b')"))
        order.append("second")
    thread.join()
    assert order == ["first", "second"]


def test_ping(db: Database) -> None:
    assert db.ping()
    assert not Database("postgresql+psycopg://nobody@127.0.0.1:1/none").ping()


def _backend_pid(db: Database) -> int:
    with db.write() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    """What a PostgreSQL restart does to a pooled connection: the server closes it."""
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_a_connection_the_server_closed_is_replaced_before_use(db: Database) -> None:
    """A PostgreSQL restart closes the pooled connections: the next transaction gets a new
    one instead of failing (`pool_pre_ping`)."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's connections (SQLite has no server)")
    closed = _backend_pid(db)
    _terminate(closed)
    assert _backend_pid(db) != closed


def _increment_many(url: str, times: int) -> None:
    database = Database(url)
    for _ in range(times):
        with database.write() as session:
            value = session.execute(text("SELECT COUNT(*) FROM tags")).scalar_one()
            session.execute(
                text("INSERT INTO tags (name) VALUES (:n)"), {"n": f"t{value}-{os.getpid()}"}
            )
    database.dispose()


def test_sqlite_writers_in_several_processes_never_fail_with_locked(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(db.url, 40)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with db.read() as session:
        assert session.execute(text("SELECT COUNT(*) FROM tags")).scalar_one() == 120


def test_the_urgent_writer_goes_before_queued_background_writers() -> None:
    """The webhook door's insert (urgent) is not held back by the writers already queued."""
    import threading
    import time

    from storage.db import SqliteWriteLock

    lock = SqliteWriteLock(None)
    order: list[str] = []

    def take(name: str, urgent: bool) -> None:
        with lock.hold(urgent=urgent):
            order.append(name)

    with lock.hold(urgent=False):
        background = [
            threading.Thread(target=take, args=(f"background{n}", False)) for n in range(3)
        ]
        for thread in background:
            thread.start()
        time.sleep(0.1)  # they are queued
        door = threading.Thread(target=take, args=("door", True))
        door.start()
        time.sleep(0.1)
    for thread in [*background, door]:
        thread.join(5)
    assert order[0] == "door"
    assert sorted(order[1:]) == ["background0", "background1", "background2"]
