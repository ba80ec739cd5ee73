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


def schema_problem(url: str) -> str | None:
    """Why the database at `url` cannot serve stepline yet, in a sentence (None: it can).

    Asked before a command opens the database: it never creates a SQLite file (connecting
    would leave an empty one behind) and never changes anything."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        if not Path(parsed.database).is_file():
            return f"there is no database at {parsed.database}"
    connect_args = {} if parsed.get_backend_name() == "sqlite" else {"connect_timeout": 5}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # the driver's own error says why (refused, unknown database, …)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"cannot open the database at {shown}: {reason}"
    finally:
        engine.dispose()
    if "alembic_version" not in tables or "friends" not in tables:
        return f"the database at {shown} has no stepline tables yet"
    return None
