"""Migration 0008: a multicast's recipients are stored without a compression attempt on
PostgreSQL (EXTERNAL), and a row queued before the upgrade keeps them, both ways."""

from __future__ import annotations

import json
import uuid

from alembic import command
from sqlalchemy import Engine, create_engine, text

from storage.migrate import alembic_config, upgrade

ROW = (
    "INSERT INTO outbox (kind, recipients, messages, retry_key, cause, status, attempts,"
    ' due_at, created_at) VALUES (\'multicast\', :recipients, \'[{"type": "text",'
    " \"text\": \"x\"}]', :key, 'sequence:campaign/0', 'pending', 0, '2026-12-06 00:00:00',"
    " '2026-12-06 00:00:00')"
)


def recipients(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        stored = conn.scalar(text("SELECT recipients FROM outbox"))
    return json.loads(stored) if isinstance(stored, str) else stored


def storage(engine: Engine) -> str | None:
    """How PostgreSQL stores large `recipients` values: x (compress, then out of line) or
    e (out of line, never compressed); None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT attstorage FROM pg_attribute"
                " WHERE attrelid = CAST('outbox' AS regclass) AND attname = 'recipients'"
            )
        )


def test_a_queued_multicast_keeps_its_500_recipients_across_0008(empty_url: str) -> None:
    upgrade(empty_url, "0007")
    engine = create_engine(empty_url)
    users = [f"U{uuid.uuid4().hex}" for _ in range(500)]  # ~18 KB of JSON: stored out of line
    with engine.begin() as conn:
        conn.execute(text(ROW), {"recipients": json.dumps(users), "key": str(uuid.uuid4())})
    postgres = engine.dialect.name == "postgresql"
    assert storage(engine) == ("x" if postgres else None)

    upgrade(empty_url)
    assert storage(engine) == ("e" if postgres else None)
    assert recipients(engine) == users

    command.downgrade(alembic_config(empty_url), "0007")
    assert storage(engine) == ("x" if postgres else None)
    assert recipients(engine) == users
    engine.dispose()
