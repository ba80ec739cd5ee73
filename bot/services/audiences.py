"""Uploaded audiences: named lists of LINE user ids, usable in conditions as `{audience: A}`.

An import is all or nothing: every line is checked first and any bad line is reported with
its number; only a clean file replaces the audience, in one transaction."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from bot.line.limits import LINE_USER_ID
from storage.db import Database
from storage.models import Audience, AudienceMember

NAME = re.compile(r"^[^\s:|/]{1,100}$")
HEADERS = {"user_id", "userid", "line_user_id", "id", "uid"}
INSERT_CHUNK = 5000


class AudienceError(ValueError):
    """A bad import: the problems, one per bad line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


@dataclass(frozen=True)
class ImportResult:
    name: str
    size: int
    duplicates: int
    replaced: bool


def parse_user_ids(text: str) -> list[str]:
    """User ids from a TXT (one per line) or CSV (the first column) file; a first line naming
    the column (user_id, userId, …) is a header. Raises AudienceError listing bad lines."""
    ids: list[str] = []
    problems: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cell = row[0].strip().lstrip("\ufeff") if row else ""
        if not cell:
            continue
        if number == 1 and cell.lower() in HEADERS:
            continue
        if not LINE_USER_ID.match(cell):
            shown = cell if len(cell) <= 40 else cell[:37] + "..."
            problems.append(
                f"line {number}: {shown!r} is not a LINE user id (U followed by 32 hex digits)"
            )
            continue
        ids.append(cell)
    if problems:
        raise AudienceError(
            f"{len(problems)} bad line(s); nothing was imported", problems=problems[:100]
        )
    if not ids:
        raise AudienceError("the file holds no user ids; nothing was imported")
    return ids


def import_audience(
    db: Database,
    name: str,
    text: str,
    *,
    source: str,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Replace (or create) the audience `name` with the ids in `text`, all or nothing."""
    if not NAME.match(name):
        raise AudienceError(f"audience name {name!r}: 1–100 characters, no spaces, ':', '|' or '/'")
    parsed = parse_user_ids(text)
    unique = list(dict.fromkeys(parsed))
    with db.write() as session:
        audience = session.scalar(select(Audience).where(Audience.name == name))
        replaced = audience is not None
        if audience is None:
            audience = Audience(name=name, size=0, source="", updated_at=now)
            session.add(audience)
            session.flush()
        else:
            session.execute(delete(AudienceMember).where(AudienceMember.audience_id == audience.id))
        for start in range(0, len(unique), INSERT_CHUNK):
            chunk = unique[start : start + INSERT_CHUNK]
            session.execute(
                insert(AudienceMember),
                [{"audience_id": audience.id, "line_user_id": uid} for uid in chunk],
            )
            if progress:
                progress(start + len(chunk), len(unique))
        audience.size, audience.source, audience.updated_at = len(unique), source[:300], now
    return ImportResult(name, len(unique), len(parsed) - len(unique), replaced)


def list_audiences(db: Database) -> list[dict[str, object]]:
    with db.read() as session:
        rows = session.execute(
            select(Audience.name, Audience.size, Audience.source, Audience.updated_at).order_by(
                Audience.name
            )
        ).all()
    return [
        {"name": n, "size": size, "source": src, "updated_at": at.isoformat()}
        for n, size, src, at in rows
    ]
