"""Fresh planner statistics for a table before a large set-based pass (PostgreSQL).

Autovacuum analyses a table once a tenth of it changed, but not at once: after a bulk import
the statistics can still describe the table as it was, and a plan chosen for "a handful of
rows" runs over a hundred thousand. `stepline db upgrade` analyses everything; this is for a
worker about to go through much of one table.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage.db import Database

log = logging.getLogger(__name__)

STALE_SHARE = 0.2  # rows changed since the last ANALYZE, as a share of the live rows
LOCK_TIMEOUT = "200ms"  # ANALYZE waits for a running VACUUM of the table: not that long


def analyze_if_stale(db: Database, table: str) -> bool:
    """ANALYZE `table` when more than `STALE_SHARE` of it changed since it was last analysed;
    True if it was. Nothing on SQLite (its statistics are only read by its own ANALYZE,
    which `stepline db upgrade` runs), nor when the table is busy being vacuumed."""
    if db.is_sqlite:
        return False
    with db.write() as session:
        stale = session.execute(
            text(
                "SELECT n_mod_since_analyze > GREATEST(n_live_tup, 1) * :share"
                " FROM pg_stat_user_tables WHERE relid = CAST(:table AS regclass)"
            ),
            {"share": STALE_SHARE, "table": table},
        ).scalar()
        if not stale:
            return False
        try:
            with session.begin_nested():
                session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                session.execute(text(f'ANALYZE "{table}"'))
        except DBAPIError as exc:  # lock_timeout: a VACUUM holds the table
            log.info("statistics of %s are stale but ANALYZE had to wait: %s", table, exc.orig)
            return False
    log.info("analysed %s (its planner statistics were stale)", table)
    return True
