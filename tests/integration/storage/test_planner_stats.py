"""`storage.planner_stats.analyze_if_stale`: ANALYZE a table that changed a lot since its
statistics were taken, and only then."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import text

from storage.db import Database
from storage.planner_stats import analyze_if_stale
from tests.support import add_friends


def analysed_at(db: Database) -> datetime | None:
    with db.read() as session:
        return session.execute(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relid = 'friends'::regclass")
        ).scalar()


def counted_changes(db: Database, at_least: int) -> None:
    """Wait until PostgreSQL's statistics show the changes (they are flushed within ~1 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.read() as session:
            changed = session.execute(
                text(
                    "SELECT n_mod_since_analyze FROM pg_stat_user_tables"
                    " WHERE relid = 'friends'::regclass"
                )
            ).scalar()
        if changed is not None and changed >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError("PostgreSQL did not count the inserted rows")


def test_a_table_analysed_only_when_much_of_it_changed(db: Database) -> None:
    if db.is_sqlite:
        add_friends(db, 50)
        assert analyze_if_stale(db, "friends") is False  # SQLite: `stepline db upgrade` does
        return
    with db.write() as session:
        session.execute(text("ANALYZE friends"))
    add_friends(db, 400)
    counted_changes(db, 400)
    before = analysed_at(db)
    assert analyze_if_stale(db, "friends") is True
    assert analysed_at(db) != before
    after = analysed_at(db)
    # A few changes on top (1% of the table): the statistics are still good.
    add_friends(db, 4, first=400)
    counted_changes(db, 4)
    assert analyze_if_stale(db, "friends") is False
    assert analysed_at(db) == after
