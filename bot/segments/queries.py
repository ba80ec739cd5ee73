"""Queries over the friends a condition matches: how many (`count_matching`), a few of them
(`sample_matching`), their ids for INSERT ... SELECT (`matching_ids_select`), and the ids of
the tags a condition names, read first so the planner sees how common each tag is
(`tag_ids_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Select, func, select
from sqlalchemy.orm import Session

from bot.catalogue import Catalogue
from bot.catalogue.models import Condition, TagCondition
from bot.engine.fields import to_json
from bot.segments.compile import FRIENDS, TAGS, segment_clause
from bot.segments.dialects import without_jit
from bot.segments.resolving import expanded


def tag_ids_for(
    session_or_connection: Session | Connection, condition: Condition, catalogue: Catalogue
) -> dict[str, int]:
    """The ids of the tags the condition names (segments it names included); a tag nobody
    has ever had has no id, and `{tag: X}` on it is simply false."""
    names = sorted(
        {c.tag for c in expanded(condition, catalogue, ()) if isinstance(c, TagCondition)}
    )
    if not names:
        return {}
    rows = session_or_connection.execute(
        select(TAGS.c.name, TAGS.c.id).where(TAGS.c.name.in_(names))
    )
    return {name: int(tag_id) for name, tag_id in rows}


def matching_ids_select(
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    tag_ids: Mapping[str, int] | None = None,
) -> Select[Any]:
    """`SELECT friends.id` of the following friends that match (for INSERT ... SELECT)."""
    clause = segment_clause(condition, catalogue=catalogue, tz=tz, now=now, tag_ids=tag_ids)
    return select(FRIENDS.c.id).where(FRIENDS.c.status == "following", clause)


def count_matching(
    session_or_connection: Session | Connection,
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool = False,
) -> int:
    """How many friends match, in one query (blocked friends only if asked)."""
    without_jit(session_or_connection)
    tag_ids = tag_ids_for(session_or_connection, condition, catalogue)
    where = _where(condition, catalogue, tz, now, include_blocked, tag_ids)
    statement = select(func.count()).select_from(FRIENDS).where(*where)
    return int(session_or_connection.execute(statement).scalar_one())


def sample_matching(
    session_or_connection: Session | Connection,
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool = False,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """A few matching friends (oldest first): LINE user id, display name, status, followed at."""
    tag_ids = tag_ids_for(session_or_connection, condition, catalogue)
    where = _where(condition, catalogue, tz, now, include_blocked, tag_ids)
    statement = (
        select(
            FRIENDS.c.line_user_id,
            FRIENDS.c.display_name,
            FRIENDS.c.status,
            FRIENDS.c.followed_at,
        )
        .where(*where)
        .order_by(FRIENDS.c.id)
        .limit(max(0, int(limit)))
    )
    return [
        {
            "line_user_id": row.line_user_id,
            "display_name": row.display_name,
            "status": row.status,
            "followed_at": to_json(row.followed_at),
        }
        for row in session_or_connection.execute(statement)
    ]


def _where(
    condition: Condition,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool,
    tag_ids: Mapping[str, int],
) -> list[ColumnElement[bool]]:
    where = [segment_clause(condition, catalogue=catalogue, tz=tz, now=now, tag_ids=tag_ids)]
    if not include_blocked:
        where.append(FRIENDS.c.status != "blocked")
    return where
