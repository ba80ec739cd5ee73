"""`catalogue_versions` on SQLite and PostgreSQL: the newest row, recording once per change,
and two processes' runtimes on one database moving to the same catalogue."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.catalogue.versions import DatabaseVersions, Version
from bot.clock import FrozenClock
from bot.config import Settings
from bot.runtime import Runtime
from storage.db import Database
from storage.models import CatalogueVersion


def test_the_newest_row_and_one_row_per_change(db: Database) -> None:
    clock = FrozenClock(datetime(2026, 12, 8, 9, 0, tzinfo=UTC))
    versions = DatabaseVersions(db, clock)
    assert versions.newest() is None
    first = versions.record("a" * 64, "serve pid 1 at start")
    assert versions.record("a" * 64, "serve pid 2 at start") == first  # the same catalogue
    second = versions.record("b" * 64, "worker pid 3 via SIGHUP " + "x" * 300)
    assert second.id > first.id
    assert versions.newest() == second == Version(second.id, "b" * 64)
    with db.read() as session:
        rows = session.scalars(select(CatalogueVersion).order_by(CatalogueVersion.id)).all()
        assert [(r.content_hash[0], r.loaded_at) for r in rows] == [
            ("a", clock.now()),
            ("b", clock.now()),
        ]
        assert rows[0].origin == "serve pid 1 at start" and len(rows[1].origin) == 200


def test_two_runtimes_on_one_database_run_the_same_catalogue(db: Database, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "k.yaml").write_text("keywords:\n  - {match: hi, reply: v1}\n", encoding="utf-8")
    settings = Settings(database_url=db.url, flows_dir=flows, catalogue_check_seconds=0.05)
    serve, worker = Runtime(settings, db=db), Runtime(settings, db=db)
    try:
        serve.catalogues.join("serve")
        worker.catalogues.join("worker")
        (flows / "k.yaml").write_text("keywords:\n  - {match: hi, reply: v2}\n", encoding="utf-8")
        recorded = serve.catalogues.reload(how="via API").version
        assert recorded is not None
        time.sleep(0.06)
        worker.catalogues.follow()
        assert worker.catalogue.keywords[0].reply == "v2"
        assert worker.catalogues.status() == {
            "running": recorded.json(),
            "newest": recorded.json(),
            "in_sync": True,
            "problem": None,
        }
    finally:
        serve.close()
        worker.close()
