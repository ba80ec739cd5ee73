"""catalogue_versions (one catalogue across processes); link_clicks.actions_ran

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:40:00.000000

A reload in one process records the catalogue it put in force; every other `serve` and
`worker` process sees the newer row and reloads too. A click records whether it ran the
link's `on_click`, so the actions run at most once per friend and link within a window.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "catalogue_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_versions")),
    )
    op.add_column(
        "link_clicks",
        sa.Column("actions_ran", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("link_clicks", "actions_ran")
    op.drop_table("catalogue_versions")
