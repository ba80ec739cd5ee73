"""sequence enrollments: a friend's next step in a step sequence or reminder

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sequence_enrollments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "friend_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sequence", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("anchor_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("next_due_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["friend_id"],
            ["friends.id"],
            name=op.f("fk_sequence_enrollments_friend_id_friends"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_enrollments")),
        sa.UniqueConstraint(
            "friend_id", "sequence", name="uq_sequence_enrollments_friend_sequence"
        ),
    )
    op.create_index(
        "ix_sequence_enrollments_status_due",
        "sequence_enrollments",
        ["status", "next_due_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sequence_enrollments_status_due", table_name="sequence_enrollments")
    op.drop_table("sequence_enrollments")
