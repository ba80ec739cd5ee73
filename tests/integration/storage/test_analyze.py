"""`stepline db upgrade` refreshes the planner's statistics (ANALYZE) on both databases."""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database
from storage.migrate import analyze
from tests.support import add_friends


def test_analyze_gathers_statistics(db: Database) -> None:
    add_friends(db, 50)
    analyze(db.url)
    with db.read() as session:
        if db.is_sqlite:
            rows = session.execute(text("SELECT tbl FROM sqlite_stat1 WHERE tbl = 'friends'"))
        else:
            rows = session.execute(
                text(
                    "SELECT relname FROM pg_stat_user_tables WHERE relname = 'friends'"
                    " AND last_analyze IS NOT NULL"
                )
            )
        assert rows.all(), "no statistics for friends after ANALYZE"
