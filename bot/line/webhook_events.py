"""Reading one webhook event at the door: a typed view of what stepline acts on, or why not.

A signed body can still carry anything (LINE's own shapes, a bug, someone holding the
secret), and a bad event must not hurt the events beside it. So every event is read here,
once, before anything is stored: a field of the wrong type, too long, with a NUL or a lone
surrogate, a non-finite number or absurd nesting makes the event `ignored` with the reason,
and the payload kept for it is a copy made safe to store (a database refuses NUL and NaN).
The shapes follow LINE's `webhook.yml` (../shared/line-openapi); what stepline does not act on
is only checked for being storable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from bot.line.limits import LINE_USER_ID, MAX_POSTBACK_DATA, utf16_len

MAX_EVENT_ID = 64  # the column; LINE's ids are 26-character ULIDs
MAX_TYPE = 40
MAX_REPLY_TOKEN = 100  # the outbox column; LINE's are 32 characters
MAX_TEXT = 5000  # UTF-16 units: LINE's limit on a text a user sends
MAX_STRING = 10_000  # any other string (LINE's longest fields are far shorter)
MAX_DEPTH = 16  # LINE's events nest about five deep
MAX_NODES = 5_000  # values in one event
MAX_PARAM = 300  # a postback's params (a date, a time, a rich menu alias)

_EVENT_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII: LINE's ULIDs and the emulator's ids
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SAFE_TRUNCATION = "…"


@dataclass(frozen=True)
class InboundEvent:
    """One event as stored: `problem` says why it is ignored (None: it is well formed)."""

    event_id: str
    type: str
    user_id: str | None  # the LINE user of a one-to-one chat; None for groups and rooms
    timestamp_ms: int | None
    reply_token: str | None
    is_redelivery: bool
    payload: Any  # the event itself when well formed, else a copy safe to store
    problem: str | None = None


class _Bad(ValueError):
    """Why an event is ignored (the message is stored with it)."""


def read_event(raw: Any) -> InboundEvent:
    """Read one element of a webhook body's `events`; never raises."""
    try:
        _check_storable(raw)
        if not isinstance(raw, dict):
            raise _Bad(f"the event is a {_kind(raw)}, not an object")
        return _read(raw)
    except _Bad as bad:
        return _ignored(raw, str(bad))


def _read(event: dict[str, Any]) -> InboundEvent:
    event_id = _string(event, "webhookEventId", required=True, limit=MAX_EVENT_ID)
    assert event_id is not None
    if not _EVENT_ID.fullmatch(event_id):
        raise _Bad("webhookEventId: only printable ASCII characters are allowed")
    kind = _string(event, "type", required=True, limit=MAX_TYPE)
    assert kind is not None
    timestamp = event.get("timestamp")
    if timestamp is not None and (
        not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp < 2**53
    ):
        raise _Bad("timestamp: not a time in milliseconds")
    reply_token = _string(event, "replyToken", limit=MAX_REPLY_TOKEN) or None
    _string(event, "mode", limit=MAX_TYPE)
    context = _object(event, "deliveryContext")
    redelivery = False
    if context is not None:
        flag = context.get("isRedelivery", False)
        if not isinstance(flag, bool):
            raise _Bad("deliveryContext.isRedelivery: not a boolean")
        redelivery = flag
    user_id = _user_id(event)
    _check_kind(kind, event)
    return InboundEvent(event_id, kind, user_id, timestamp, reply_token, redelivery, event)


def _user_id(event: dict[str, Any]) -> str | None:
    source = _object(event, "source")
    if source is None:
        return None
    source_type = _string(source, "type", limit=MAX_TYPE, where="source.")
    user_id = _string(source, "userId", limit=MAX_EVENT_ID, where="source.")
    if user_id is not None and not LINE_USER_ID.match(user_id):
        raise _Bad("source.userId: not a LINE user id (U and 32 hex digits)")
    # A friend's message in a group must not answer their questionnaire.
    return user_id if source_type == "user" else None


def _check_kind(kind: str, event: dict[str, Any]) -> None:
    """The fields stepline acts on, for the kinds it acts on."""
    if kind == "follow":
        follow = _object(event, "follow")
        if follow is not None and not isinstance(follow.get("isUnblocked", False), bool):
            raise _Bad("follow.isUnblocked: not a boolean")
    elif kind == "message":
        message = _object(event, "message", required=True)
        assert message is not None
        message_type = _string(message, "type", required=True, limit=MAX_TYPE, where="message.")
        _string(message, "id", limit=MAX_EVENT_ID, where="message.")
        if message_type == "text":
            text = _string(message, "text", required=True, limit=None, where="message.")
            assert text is not None
            if utf16_len(text) > MAX_TEXT:
                raise _Bad(f"message.text: longer than LINE's {MAX_TEXT} characters")
    elif kind == "postback":
        postback = _object(event, "postback", required=True)
        assert postback is not None
        data = _string(postback, "data", required=True, limit=None, where="postback.")
        assert data is not None
        if len(data) > MAX_POSTBACK_DATA:
            raise _Bad(f"postback.data: longer than LINE's {MAX_POSTBACK_DATA} characters")
        params = _object(postback, "params", where="postback.")
        for name, value in (params or {}).items():
            if not isinstance(value, str) or len(value) > MAX_PARAM:
                raise _Bad(f"postback.params.{name[:40]}: not a short string")


def _string(
    parent: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    limit: int | None,
    where: str = "",
) -> str | None:
    value = parent.get(name)
    if value is None:
        if required:
            raise _Bad(f"{where}{name}: missing")
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where}{name}: a {_kind(value)}, not a string")
    if required and not value and name != "data":
        raise _Bad(f"{where}{name}: empty")
    if limit is not None and len(value) > limit:
        raise _Bad(f"{where}{name}: longer than {limit} characters")
    return value


def _object(
    parent: dict[str, Any], name: str, *, required: bool = False, where: str = ""
) -> dict[str, Any] | None:
    value = parent.get(name)
    if value is None:
        if required:
            raise _Bad(f"{where}{name}: missing")
        return None
    if not isinstance(value, dict):
        raise _Bad(f"{where}{name}: a {_kind(value)}, not an object")
    return value


def _check_storable(value: Any) -> None:
    """Walk the event once: bounded depth and size, finite numbers, clean strings."""
    budget = [MAX_NODES]

    def walk(node: Any, path: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Bad(f"more than {MAX_NODES} values in one event")
        if depth > MAX_DEPTH:
            raise _Bad(f"{path or 'the event'}: nested deeper than {MAX_DEPTH}")
        if isinstance(node, str):
            _clean(node, path)
        elif isinstance(node, float) and not math.isfinite(node):
            raise _Bad(f"{path}: {json.dumps(node)} is not a number JSON allows")
        elif isinstance(node, dict):
            for key, item in node.items():
                _clean(key, f"{path}.<key>")
                walk(item, f"{path}.{key[:40]}" if path else key[:40], depth + 1)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]", depth + 1)

    walk(value, "", 0)


def _clean(text: str, path: str) -> None:
    if len(text) > MAX_STRING and not path.endswith("message.text"):
        raise _Bad(f"{path}: longer than {MAX_STRING} characters")
    if "\x00" in text:
        raise _Bad(f"{path}: contains a NUL character")
    if _SURROGATE.search(text):
        raise _Bad(f"{path}: contains a lone surrogate (not valid Unicode)")


def _ignored(raw: Any, problem: str) -> InboundEvent:
    """An ignored event, with what can be kept of it: its id when it has a usable one (a
    redelivery is then a duplicate), else one derived from its content."""
    payload = safe_copy(raw)
    event_id = raw.get("webhookEventId") if isinstance(raw, dict) else None
    if not (
        isinstance(event_id, str)
        and 0 < len(event_id) <= MAX_EVENT_ID
        and _EVENT_ID.fullmatch(event_id)
    ):
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        event_id = f"unreadable-{digest[:40]}"
    kind = raw.get("type") if isinstance(raw, dict) else None
    kind = safe_copy(kind)[:MAX_TYPE] if isinstance(kind, str) else ""
    return InboundEvent(
        event_id=event_id,
        type=kind,
        user_id=None,
        timestamp_ms=None,
        reply_token=None,
        is_redelivery=False,
        payload=payload,
        problem=problem[:500],
    )


def safe_copy(value: Any, depth: int = 0) -> Any:
    """`value` made storable: NUL and lone surrogates replaced, non-finite numbers null,
    long strings cut, deep or huge parts elided."""
    if isinstance(value, str):
        cut = value[:MAX_STRING] + (_SAFE_TRUNCATION if len(value) > MAX_STRING else "")
        return _SURROGATE.sub("\ufffd", cut.replace("\x00", "\ufffd"))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return _SAFE_TRUNCATION
    if isinstance(value, dict):
        items = list(value.items())[:200]
        return {safe_copy(str(k), depth + 1): safe_copy(v, depth + 1) for k, v in items}
    if isinstance(value, list):
        return [safe_copy(item, depth + 1) for item in value[:200]]
    return repr(value)[:200]


def _kind(value: Any) -> str:
    return {
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
