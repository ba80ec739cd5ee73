"""field_values: a covering index for number ranges in segments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 19:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("field_values", schema=None) as batch_op:
        batch_op.drop_index("ix_field_values_name_number")
        batch_op.create_index(
            "ix_field_values_name_number", ["name", "value_number", "type", "friend_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("field_values", schema=None) as batch_op:
        batch_op.drop_index("ix_field_values_name_number")
        batch_op.create_index("ix_field_values_name_number", ["name", "value_number"])
