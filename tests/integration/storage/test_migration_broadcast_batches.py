"""Migration 0007: a broadcast half-way through queueing keeps its place across the upgrade
(its remaining recipients become batches) and across a downgrade (back to one row each)."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import create_engine, inspect, text

from storage.migrate import alembic_config, upgrade

BROADCAST = (
    "INSERT INTO broadcasts (id, segment, messages, send_at, status, dry_run, cursor,"
    " queued_all, created_at) VALUES (:id, '\"s\"', '[]', '2026-12-01 00:00:00',"
    " :status, false, :cursor, :queued_all, '2026-12-01 00:00:00')"
)


def test_an_open_broadcast_keeps_its_place_across_0007(empty_url: str) -> None:
    upgrade(empty_url, "0006")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        # Broadcast 1 queued recipients up to friend 6_000 of 1..12_001 (step 1 above 6_000);
        # broadcast 2 is done: its recipients need no batches.
        conn.execute(
            text(BROADCAST), {"id": 1, "status": "sending", "cursor": 6000, "queued_all": False}
        )
        conn.execute(text(BROADCAST), {"id": 2, "status": "done", "cursor": 9, "queued_all": True})
        conn.execute(
            text("INSERT INTO broadcast_recipients (broadcast_id, friend_id) VALUES (:b, :f)"),
            [{"b": 1, "f": f} for f in range(1, 12_002)] + [{"b": 2, "f": f} for f in range(1, 10)],
        )

    upgrade(empty_url)

    with engine.connect() as conn:
        batches = conn.execute(
            text(
                "SELECT broadcast_id, position, friend_ids, size FROM broadcast_batches ORDER BY broadcast_id, position"
            )
        ).all()
        columns = [c["name"] for c in inspect(conn).get_columns("broadcasts")]
    loaded = [
        (b, p, json.loads(ids) if isinstance(ids, str) else ids, n) for b, p, ids, n in batches
    ]
    assert [(b, p, n) for b, p, _, n in loaded] == [(1, 0, 5000), (1, 1, 1001)]
    assert loaded[0][2] == list(range(6001, 11_001))
    assert loaded[1][2] == list(range(11_001, 12_002))
    assert "cursor" not in columns  # the batch rows left are the work left

    command.downgrade(alembic_config(empty_url), "0006")

    with engine.connect() as conn:
        remaining = (
            conn.execute(
                text(
                    "SELECT friend_id FROM broadcast_recipients WHERE broadcast_id = 1 ORDER BY friend_id"
                )
            )
            .scalars()
            .all()
        )
        cursor = conn.scalar(text("SELECT cursor FROM broadcasts WHERE id = 1"))
    # What the older code reads: friends above the cursor are still to be queued.
    assert remaining == list(range(6001, 12_002))
    assert cursor == 6000
    engine.dispose()
