"""The second baseline: a bare Flask app that stores each webhook body with one INSERT.

It writes to the bot's own database (`DATABASE_URL`: the SQLite file in WAL mode, or the
PostgreSQL schema) through stepline's engine rules (`storage.db.Database`: busy timeout,
BEGIN IMMEDIATE and the write lock on SQLite, a connection pool on PostgreSQL), so it is the
cost of one committed write per request and nothing of the bot's work. The benchmark creates
the table before starting it (`create_table`), not each gunicorn worker at once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, request
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, create_engine

from storage.db import Database

metadata = MetaData()
bodies = Table(
    "bench_bare_insert",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def create_table(url: str) -> None:
    """Create the app's table in the database at `url` (once, before the app starts)."""
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()


app = Flask("bare-insert")
_db: Database | None = None


def database() -> Database:
    """This worker's engine, made on first use (after gunicorn's fork)."""
    global _db
    if _db is None:
        _db = Database(os.environ["DATABASE_URL"])
    return _db


@app.post("/callback")
def callback() -> tuple[str, int]:
    body = request.get_data(cache=False)
    with database().write_core() as conn:
        conn.execute(bodies.insert().values(body=body, received_at=datetime.now(UTC)))
    return "{}", 200


@app.get("/healthz")
def healthz() -> tuple[str, int]:
    return "{}", 200
