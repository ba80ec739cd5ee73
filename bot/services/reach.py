"""Segments, broadcasts and audiences over the admin API: parse → handle → map errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot import segments
from bot.runtime import Runtime
from bot.services import broadcasts, cost
from bot.services.audiences import AudienceError, import_audience, list_audiences
from bot.services.errors import InvalidInput
from storage.models import Friend, FriendStatus


def _condition(runtime: Runtime, body: dict[str, Any]) -> Any:
    if "segment" not in body:
        raise InvalidInput("'segment' is required: a condition or the name of a segment")
    try:
        return segments.resolve(body["segment"], runtime.catalogue)
    except segments.SegmentError as exc:
        raise InvalidInput(str(exc)) from exc


def reach(runtime: Runtime, body: dict[str, Any], *, sample: int) -> dict[str, Any]:
    """`{"count", "sample", "cost", "warnings"}` for `POST /segments/count|preview`.

    A segment that names what does not exist (a tag the catalogue does not define, …) is
    counted all the same, each such name a warning: a broadcast refuses it, but a count is a
    question, and friends may still hold a tag the catalogue has since dropped."""
    condition = _condition(runtime, body)
    now, catalogue, tz = runtime.clock.now(), runtime.catalogue, runtime.settings.tz
    with runtime.db.read() as session:
        unknown = segments.unknown_names(session, condition, catalogue)
        count = segments.count_matching(session, condition, catalogue=catalogue, tz=tz, now=now)
        rows = (
            segments.sample_matching(
                session, condition, catalogue=catalogue, tz=tz, now=now, limit=sample
            )
            if sample
            else []
        )
        total = session.scalar(
            select(func.count()).select_from(Friend).where(Friend.status == FriendStatus.FOLLOWING)
        )
    estimate = cost.estimate(count, int(total or 0), runtime.settings, runtime.line)
    warnings = [f"the segment names what does not exist: {name}" for name in unknown]
    warnings += estimate.pop("warnings")
    return {"count": count, "sample": rows, "cost": estimate, "warnings": warnings}


def create_broadcast(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - {"segment", "messages", "send_at", "dry_run", "name"}
    if unknown:
        raise InvalidInput(f"unknown key(s): {', '.join(sorted(unknown))}")
    planned = broadcasts.plan_broadcast(
        runtime,
        segment=body.get("segment"),
        messages=body.get("messages"),
        send_at=body.get("send_at"),
        dry_run=body.get("dry_run", False),
        name=body.get("name"),
    )
    row = planned.row
    return {
        "id": row.id,
        "status": row.status,
        "send_at": row.send_at.isoformat(),
        "warnings": planned.warnings,
    }


def broadcast_status(runtime: Runtime, broadcast_id: int) -> dict[str, Any]:
    return broadcasts.broadcast_status(runtime, broadcast_id)


def cancel_broadcast(runtime: Runtime, broadcast_id: int) -> dict[str, Any]:
    return broadcasts.cancel_broadcast(runtime, broadcast_id)


def upload_audience(runtime: Runtime, name: str | None, text: str, source: str) -> dict[str, Any]:
    if not name:
        raise InvalidInput("'name' is required")
    try:
        result = import_audience(runtime.db, name, text, source=source, now=runtime.clock.now())
    except AudienceError as exc:
        raise InvalidInput(exc.message, exc.problems) from exc
    return {
        "name": result.name,
        "size": result.size,
        "duplicates": result.duplicates,
        "replaced": result.replaced,
    }


def audiences(runtime: Runtime) -> dict[str, Any]:
    return {"audiences": list_audiences(runtime.db)}
