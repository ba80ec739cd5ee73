"""Friends: read one, list (paged, by tag), change tags and fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine.fields import InvalidValue, coerce, to_json
from bot.engine.friend_record import FriendRecord
from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.errors import InvalidInput, NotFound
from bot.services.turns import FriendNotFound, run_turn
from storage.models import (
    Conversation,
    ConversationStatus,
    EnrollmentStatus,
    Friend,
    FriendTag,
    SequenceEnrollment,
    Tag,
)

MAX_PAGE = 500


def friend_json(record: FriendRecord, session: Session) -> dict[str, Any]:
    friend = record.friend
    conv = session.scalars(
        select(Conversation)
        .where(
            Conversation.friend_id == friend.id, Conversation.status == ConversationStatus.ACTIVE
        )
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()
    return {
        "line_user_id": friend.line_user_id,
        "display_name": friend.display_name,
        "status": friend.status,
        "followed_at": to_json(friend.followed_at),
        "route": friend.route,
        "rich_menu": friend.rich_menu,  # the menu they should see; null: the default
        "tags": sorted(record.tags),
        "fields": {name: to_json(value) for name, value in sorted(record.fields.items())},
        "conversation": {"flow": conv.flow, "state": conv.state} if conv else None,
        "fields_shown": fields_shown(record),
        "sequences": waiting_steps(record, session),
    }


def fields_shown(record: FriendRecord) -> list[dict[str, str]]:
    """The friend's fields as the owner wrote them, in catalogue order: the field's `label`
    and the value as the questions name it (a choice's label; dates in the account's time
    zone), for screens such as the simulator's panel."""
    catalogue, values = record.catalogue, record.fields
    shown = []
    for name, definition in catalogue.fields.items():
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            text = value.astimezone(record.tz).strftime("%Y-%m-%d %H:%M")
        elif isinstance(value, bool):
            text = "はい" if value else "いいえ"
        else:
            text = catalogue.value_labels(name).get(str(value), str(to_json(value)))
        shown.append({"field": name, "label": definition.label or name, "value": text})
    return shown


def waiting_steps(record: FriendRecord, session: Session) -> list[dict[str, Any]]:
    """Each sequence the friend is enrolled in, with its next step (from 1) and when it goes
    (ISO 8601 in the account's time zone), soonest first."""
    rows = session.scalars(
        select(SequenceEnrollment)
        .where(
            SequenceEnrollment.friend_id == record.friend.id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
            SequenceEnrollment.next_due_at.is_not(None),
        )
        .order_by(SequenceEnrollment.next_due_at)
    )
    waiting = []
    for row in rows:
        sequence = record.catalogue.sequences.get(row.sequence)
        due = row.next_due_at
        if sequence is None or due is None:
            continue
        if due.tzinfo is None:  # SQLite gives naive UTC
            due = due.replace(tzinfo=UTC)
        waiting.append(
            {
                "sequence": row.sequence,
                "title": sequence.title or row.sequence,
                "next_step": row.next_step + 1,
                "steps": len(sequence.steps),
                "due_at": due.astimezone(record.tz).isoformat(),
            }
        )
    return waiting


def get_friend(runtime: Runtime, line_user_id: str) -> dict[str, Any]:
    with runtime.db.read() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == line_user_id)).first()
        if friend is None:
            raise NotFound(f"no friend with LINE user id {line_user_id!r}")
        record = FriendRecord(
            session, friend, runtime.catalogue, runtime.clock.now(), runtime.settings.tz
        )
        return friend_json(record, session)


def _int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"`{name}` must be an integer") from exc
    if not low <= value <= high:
        raise InvalidInput(f"`{name}` must be between {low} and {high}")
    return value


def list_friends(runtime: Runtime, args: Mapping[str, str]) -> dict[str, Any]:
    """Friends ordered by id, `limit` per page, `after` = the last id of the previous page."""
    limit = _int_arg(args, "limit", 50, 1, MAX_PAGE)
    after = _int_arg(args, "after", 0, 0, 2**62)
    tag = args.get("tag")
    with runtime.db.read() as session:
        query = select(Friend).where(Friend.id > after)
        count = select(func.count(Friend.id))
        if tag:
            tagged = (
                select(FriendTag.friend_id)
                .join(Tag, Tag.id == FriendTag.tag_id)
                .where(Tag.name == tag)
            )
            query = query.where(Friend.id.in_(tagged))
            count = count.where(Friend.id.in_(tagged))
        friends = session.scalars(query.order_by(Friend.id).limit(limit + 1)).all()
        total = session.scalar(count) or 0
        page = friends[:limit]
        now = runtime.clock.now()
        items = [
            friend_json(
                FriendRecord(session, f, runtime.catalogue, now, runtime.settings.tz), session
            )
            for f in page
        ]
        next_after = page[-1].id if len(friends) > limit else None
        return {"friends": items, "total": total, "next_after": next_after}


def _validate_patch(
    runtime: Runtime, body: dict[str, Any]
) -> tuple[list[str], list[str], dict[str, Any]]:
    catalogue = runtime.catalogue
    unknown_keys = set(body) - {"add_tags", "remove_tags", "fields", "route"}
    if unknown_keys:
        raise InvalidInput(f"unknown key(s): {', '.join(sorted(unknown_keys))}")
    problems: list[str] = []
    lists: dict[str, list[str]] = {}
    for key in ("add_tags", "remove_tags"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"`{key}` must be a list of tag names")
        problems += [f"{key}: unknown tag {name!r}" for name in value if name not in catalogue.tags]
        lists[key] = value
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise InvalidInput("`fields` must be an object of field name → value")
    coerced: dict[str, Any] = {}
    for name, value in fields.items():
        definition = catalogue.fields.get(name)
        if definition is None:
            problems.append(f"fields: unknown field {name!r}")
            continue
        try:
            coerced[name] = coerce(definition, value, runtime.settings.tz)
        except InvalidValue as exc:
            problems.append(f"fields.{name}: {exc}")
    route = body.get("route")
    if (
        "route" in body
        and route is not None
        and (not isinstance(route, str) or not 1 <= len(route) <= 100)
    ):
        problems.append("route: a text of 1–100 characters, or null")
    if problems:
        raise InvalidInput("invalid change; nothing was applied", problems)
    return lists["add_tags"], lists["remove_tags"], coerced


def patch_friend(runtime: Runtime, line_user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change tags/fields; the same triggers fire as when a flow makes the change."""
    add_tags, remove_tags, fields = _validate_patch(runtime, body)

    def change(turn: Turn) -> dict[str, Any]:
        if "route" in body:  # 流入経路, reported by whoever owns the entry point
            turn.record.friend.route = body["route"]
        runtime.dispatcher.apply_changes(turn, add_tags, remove_tags, fields)
        return friend_json(turn.record, turn.record.session)

    try:
        return run_turn(runtime, line_user_id, "api:patch", change)
    except FriendNotFound as exc:
        raise NotFound(f"no friend with LINE user id {line_user_id!r}") from exc
