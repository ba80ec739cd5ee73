"""Run Alembic migrations programmatically (`stepline db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def analyze(url: str) -> None:
    """Refresh the query planner's statistics (`ANALYZE`, SQLite and PostgreSQL alike).

    Segment counts join friends to tags, fields and answers by correlated EXISTS: without
    statistics SQLite picks worse indexes (3.3 s instead of 2.4 s at 1,000,000 friends, see
    docs/BENCHMARKS.md), and PostgreSQL's autovacuum may not have run after a large import."""
    from sqlalchemy import text

    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def current_heads(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
