"""Outside events (`POST /api/v1/events`): a purchase, a reservation, a price drop.

The caller names the friend (`user_id`, or `member_id` through a `member_id` text field), the
event (`name`), its `properties` and its own unique `id`. The event runs the catalogue's
`event:` document of that name and starts flows with `start_on: [{event: NAME}]`. The event
row is written in the same transaction as its effects, unique by `id`: the same id again is
answered `duplicate` and has no second effect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from bot.catalogue import Catalogue
from bot.catalogue.explain import suggest
from bot.catalogue.models import NAME_PATTERN, EventTrigger
from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.errors import InvalidInput, NotFound
from bot.services.friends import friend_json
from bot.services.json_input import size_text, too_deep
from bot.services.turns import FriendNotFound, run_turn
from storage.models import FieldValue, Friend, OutsideEvent, OutsideEventStatus
from storage.upsert import insert_ignore

MAX_ID = 100
MAX_PROPERTIES_DEPTH = 16  # objects and arrays inside `properties`
MAX_PROPERTIES_BYTES = 64 * 1024  # as JSON, stored with each event
MEMBER_FIELD = "member_id"
KEYS = {"id", "name", "user_id", "member_id", "properties"}


@dataclass(frozen=True)
class EventRequest:
    event_id: str
    name: str
    properties: dict[str, Any]
    user_id: str | None
    member_id: str | None


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value.strip() else None


def validate(catalogue: Catalogue, body: dict[str, Any]) -> EventRequest:
    """The request, or a 422 that lists every problem of the body."""
    problems: list[str] = []
    unknown = sorted(set(body) - KEYS)
    if unknown:
        problems.append(
            f"unknown key(s): {', '.join(unknown)} (expected {', '.join(sorted(KEYS))})"
        )
    event_id = _text(body, "id")
    if event_id is None:
        problems.append("`id` is required: a non-empty string, unique per event (your own id)")
    elif len(event_id) > MAX_ID:
        problems.append(f"`id` is {len(event_id)} characters long; at most {MAX_ID}")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        problems.append("`name` is required: the event's name as a string")
    elif not re.match(NAME_PATTERN, name):
        problems.append(f"`name` {name!r} is not a valid event name (no spaces, ':', '|' or '/')")
    has_user, has_member = "user_id" in body, "member_id" in body
    user_id = _text(body, "user_id")
    member = body.get("member_id")
    member_id = (
        str(member) if isinstance(member, str | int) and not isinstance(member, bool) else None
    )
    if member_id is not None and not member_id.strip():
        member_id = None
    if has_user and has_member:
        problems.append("give either `user_id` or `member_id`, not both")
    elif not has_user and not has_member:
        problems.append("`user_id` (the LINE user id) or `member_id` is required")
    elif has_user and user_id is None:
        problems.append("`user_id` must be a non-empty string")
    elif has_member and member_id is None:
        problems.append("`member_id` must be a non-empty string or an integer")
    elif has_member and not _has_member_field(catalogue):
        problems.append(
            "`member_id` needs a text field named member_id in the catalogue"
            " (fields: {member_id: {type: text}}); send `user_id` instead"
        )
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        problems.append("`properties` must be an object")
    else:
        problems.extend(_properties_problems(properties))
    if isinstance(name, str) and name and not problems and not _known(catalogue, name):
        known = sorted({*catalogue.events, *_flow_events(catalogue)})
        hint = suggest(name, known)
        problems.append(
            f"unknown event name {name!r}{hint}: no event document, and no flow or sequence starts (or stops) on it"
        )
    if problems:
        raise InvalidInput("invalid event; nothing was done", problems)
    assert event_id is not None and isinstance(name, str) and isinstance(properties, dict)
    return EventRequest(event_id, name, properties, user_id, member_id)


def _properties_problems(properties: dict[str, Any]) -> list[str]:
    """`properties` are stored with the event and read by templates: kept small and flat."""
    where = too_deep(properties, MAX_PROPERTIES_DEPTH, "properties")
    if where is not None:
        return [f"`properties` nest more than {MAX_PROPERTIES_DEPTH} levels deep (at {where})"]
    size = len(json.dumps(properties, ensure_ascii=False).encode("utf-8"))
    if size > MAX_PROPERTIES_BYTES:
        return [
            f"`properties` are {size_text(size)} as JSON; at most {size_text(MAX_PROPERTIES_BYTES)}"
        ]
    return []


def _has_member_field(catalogue: Catalogue) -> bool:
    definition = catalogue.fields.get(MEMBER_FIELD)
    return definition is not None and definition.type == "text"


def _flow_events(catalogue: Catalogue) -> set[str]:
    """Event names that start flows or start/stop sequences."""
    triggers = [t for flow in catalogue.flows.values() for t in flow.start_on]
    for sequence in catalogue.sequences.values():
        triggers += [*sequence.start_on, *sequence.stop_on]
    return {t.event for t in triggers if isinstance(t, EventTrigger)}


def _known(catalogue: Catalogue, name: str) -> bool:
    return name in catalogue.events or name in _flow_events(catalogue)


def _line_user_id(runtime: Runtime, request: EventRequest) -> str:
    if request.user_id is not None:
        return request.user_id
    with runtime.db.read() as session:
        found = session.scalars(
            select(Friend.line_user_id)
            .join(FieldValue, FieldValue.friend_id == Friend.id)
            .where(FieldValue.name == MEMBER_FIELD, FieldValue.value_text == request.member_id)
            .order_by(Friend.id)
            .limit(2)
        ).all()
    if not found:
        raise NotFound(f"no friend with member_id {request.member_id!r}")
    if len(found) > 1:
        raise InvalidInput(
            f"member_id {request.member_id!r} belongs to more than one friend; send user_id"
        )
    return found[0]


def post_event(runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """Run one outside event for one friend, once per `id`."""
    request = validate(runtime.catalogue, body)
    line_user_id = _line_user_id(runtime, request)
    table = OutsideEvent.__table__

    def act(turn: Turn) -> dict[str, Any]:
        session = turn.record.session
        inserted = insert_ignore(
            session,
            table,  # type: ignore[arg-type]
            {
                "event_id": request.event_id,
                "name": request.name,
                "friend_id": turn.record.friend.id,
                "properties": request.properties,
                "status": OutsideEventStatus.DONE,
                "received_at": turn.now,
            },
            ["event_id"],
        )
        status: str
        if inserted:
            turn.event_values = dict(request.properties)
            status = runtime.dispatcher.on_outside_event(turn, request.name)
            if status != OutsideEventStatus.DONE:
                session.execute(
                    update(OutsideEvent)
                    .where(OutsideEvent.event_id == request.event_id)
                    .values(status=status)
                )
        else:
            status = "duplicate"  # the id was seen before: nothing ran (no column value)
        return {
            "id": request.event_id,
            "status": status,
            "friend": friend_json(turn.record, session),
        }

    try:
        return run_turn(runtime, line_user_id, f"event:{request.event_id}", act)
    except FriendNotFound as exc:
        raise NotFound(f"no friend with LINE user id {line_user_id!r}") from exc
