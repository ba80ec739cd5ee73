"""broadcasts: the frozen audience as batches of friend ids, not one row per friend

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00.000000

A broadcast still queueing (`sending`, not `queued_all`) keeps its place: the recipients it
has not written to the outbox yet (friend ids above its `cursor`) become its batches. The
batch rows are the work left (each is deleted when written to the outbox), so `cursor` goes.
Finished broadcasts need no batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000  # STEPLINE_BROADCAST_BATCH's default
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broadcast_batches",
        sa.Column("broadcast_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("friend_ids", sa.JSON(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_batches_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "position", name=op.f("pk_broadcast_batches")),
    )
    bind = op.get_bind()
    open_broadcasts = bind.execute(
        sa.text("SELECT id, cursor FROM broadcasts WHERE status = 'sending' AND NOT queued_all")
    ).all()
    for broadcast_id, cursor in open_broadcasts:
        _batch_remaining(bind, broadcast_id, cursor or 0)
    op.drop_table("broadcast_recipients")
    # A plain ALTER TABLE (SQLite 3.35+ has DROP COLUMN): batch mode would copy `broadcasts`
    # and drop the old table, and with foreign keys on, SQLite's implicit DELETE of its rows
    # would cascade to their batches (and set their outbox rows' broadcast_id to NULL).
    op.drop_column("broadcasts", "cursor")


def _batch_remaining(bind: sa.Connection, broadcast_id: int, cursor: int) -> None:
    position = 0
    after = cursor
    while True:
        ids = list(
            bind.execute(
                sa.text(
                    "SELECT friend_id FROM broadcast_recipients WHERE broadcast_id = :b"
                    " AND friend_id > :after ORDER BY friend_id LIMIT :n"
                ),
                {"b": broadcast_id, "after": after, "n": BATCH},
            ).scalars()
        )
        if not ids:
            break
        bind.execute(
            sa.text(
                "INSERT INTO broadcast_batches (broadcast_id, position, friend_ids, size)"
                " VALUES (:b, :p, :ids, :n)"
            ),
            {"b": broadcast_id, "p": position, "ids": json.dumps(ids), "n": len(ids)},
        )
        position += 1
        after = ids[-1]


def downgrade() -> None:
    op.add_column(
        "broadcasts", sa.Column("cursor", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", ID, nullable=False),
        sa.Column("friend_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "friend_id", name=op.f("pk_broadcast_recipients")),
    )
    bind = op.get_bind()
    open_broadcasts = bind.execute(
        sa.text("SELECT id FROM broadcasts WHERE status = 'sending' AND NOT queued_all")
    ).scalars()
    for broadcast_id in list(open_broadcasts):
        # The batches not yet written back to one row per friend; the cursor becomes the
        # friend id before the first of them, as the older code reads it.
        batches = bind.execute(
            sa.text(
                "SELECT friend_ids FROM broadcast_batches WHERE broadcast_id = :b ORDER BY position"
            ),
            {"b": broadcast_id},
        ).scalars()
        remaining = sorted(
            int(i) for ids in batches for i in (json.loads(ids) if isinstance(ids, str) else ids)
        )
        if remaining:
            bind.execute(
                sa.text(
                    "INSERT INTO broadcast_recipients (broadcast_id, friend_id) VALUES (:b, :f)"
                ),
                [{"b": broadcast_id, "f": f} for f in remaining],
            )
        bind.execute(
            sa.text("UPDATE broadcasts SET cursor = :c WHERE id = :b"),
            {"b": broadcast_id, "c": remaining[0] - 1 if remaining else 0},
        )
    op.drop_table("broadcast_batches")
