"""webhook_events: a queue, stored at the door and processed off the request path

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:30:00.000000

`/callback` now only stores the body's events (status `received`) and answers; processing
claims them as the outbox claims its rows (owner + lease) and retries failures with a backoff
(`attempts`, `due_at`). LINE's `timestamp` orders one friend's events. The partial indexes
cover only the few rows still waiting, however long the table grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECEIVED = sa.text("status = 'received'")
FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("line_timestamp", sa.BigInteger(), nullable=True))
    op.add_column(
        "webhook_events",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "webhook_events",
        sa.Column("due_at", storage.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("webhook_events", sa.Column("owner", sa.String(length=64), nullable=True))
    op.add_column(
        "webhook_events",
        sa.Column("lease_until", storage.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_webhook_events_received_user",
        "webhook_events",
        ["line_user_id", "line_timestamp", "id"],
        postgresql_where=RECEIVED,
        sqlite_where=RECEIVED,
    )
    op.create_index(
        "ix_webhook_events_received_due",
        "webhook_events",
        ["due_at"],
        postgresql_where=RECEIVED,
        sqlite_where=RECEIVED,
    )
    op.create_index(
        "ix_webhook_events_failed",
        "webhook_events",
        ["id"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_failed", table_name="webhook_events")
    op.drop_index("ix_webhook_events_received_due", table_name="webhook_events")
    op.drop_index("ix_webhook_events_received_user", table_name="webhook_events")
    for column in ("lease_until", "owner", "due_at", "attempts", "line_timestamp"):
        op.drop_column("webhook_events", column)
