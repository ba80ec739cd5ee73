"""outbox.recipients: stored out of line without compression (PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00.000000

A multicast row's recipients are up to 500 LINE user ids (~18 KB of JSON), so PostgreSQL
TOASTs them, and by default first tries to compress them with pglz. Random hex ids do not
compress by the 25 % pglz asks for, so the attempt is thrown away and the value is stored
as it is anyway: ~0.4 ms of the server's CPU per row for nothing (10 rows of 500: 5.4 ms
with the default, 1.3 ms with EXTERNAL, on the benchmark machine). EXTERNAL skips the attempt;
the stored size is the same. SQLite has no such setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox ALTER COLUMN recipients SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox ALTER COLUMN recipients SET STORAGE EXTENDED")
