"""`stepline db upgrade` refreshes the planner's statistics (ANALYZE) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, text

from storage.db import Database
from storage.migrate import analyze
from storage.models import Friend


def test_analyze_gathers_statistics(db: Database) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with db.write() as session:
        session.execute(
            insert(Friend),
            [
                {
                    "line_user_id": f"U{n:032x}",
                    "display_name": "",
                    "status": "following",
                    "created_at": now,
                }
                for n in range(50)
            ],
        )
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
