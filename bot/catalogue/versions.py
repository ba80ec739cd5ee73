"""`catalogue_versions`: which catalogue every `serve` and `worker` process should run.

The newest row (highest id) names it by content hash (`Catalogue.content_hash`). A process
writes a row when it puts a catalogue in force because it was asked to (a reload) or because
it started with it; every process reads the newest row now and then and moves to it
(`bot.catalogue.holder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from bot.clock import Clock
from storage.db import Database
from storage.models import CatalogueVersion

ORIGIN_LENGTH = 200  # catalogue_versions.origin

# One indexed read (the primary key, backwards): cheap enough to run every second.
NEWEST = (
    select(CatalogueVersion.id, CatalogueVersion.content_hash)
    .order_by(CatalogueVersion.id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class Version:
    """One row of `catalogue_versions`: its id and the catalogue's content hash."""

    id: int
    content_hash: str

    def json(self) -> dict[str, object]:
        return {"id": self.id, "hash": self.content_hash}


class Versions(Protocol):
    """Where the versions are kept (the database; a list in the unit tests)."""

    def newest(self) -> Version | None: ...

    def record(self, content_hash: str, origin: str) -> Version: ...


class DatabaseVersions:
    """The `catalogue_versions` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # A deferred read: checking must never queue behind SQLite's writers.
        self._reader = db.engine.execution_options(sqlite_begin="DEFERRED")

    def newest(self) -> Version | None:
        """The newest row, or None when no process has recorded a catalogue yet."""
        with self._reader.connect() as connection:
            row = connection.execute(NEWEST).first()
            connection.rollback()
        return None if row is None else Version(row.id, row.content_hash)

    def record(self, content_hash: str, origin: str) -> Version:
        """A new newest row for `content_hash`, unless the newest row is of it already (then
        that one). Two processes recording the same hash at once (PostgreSQL) may both
        insert: the rows name the same catalogue, so nothing moves because of it."""
        with self._db.write() as session:
            newest = session.execute(NEWEST).first()
            if newest is not None and newest.content_hash == content_hash:
                return Version(newest.id, newest.content_hash)
            row = CatalogueVersion(
                content_hash=content_hash,
                loaded_at=self._clock.now(),
                origin=origin[:ORIGIN_LENGTH],
            )
            session.add(row)
            session.flush()
            return Version(row.id, content_hash)
