"""The door's reader: a typed view of an event, or `ignored` with why; never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.line.webhook_events import MAX_DEPTH, read_event, safe_copy

USER = "U" + "a" * 32


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "message",
        "mode": "active",
        "timestamp": 1_790_000_000_000,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": "01JABCDEFGHJKMNPQRSTVWXYZ0",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": "r" * 32,
        "message": {"id": "1", "type": "text", "text": "こんにちは"},
    }
    base.update(changes)
    return base


def test_a_well_formed_event_is_read() -> None:
    read = read_event(event())
    assert read.problem is None
    assert (read.event_id, read.type, read.user_id) == (
        "01JABCDEFGHJKMNPQRSTVWXYZ0",
        "message",
        USER,
    )
    assert (read.timestamp_ms, read.reply_token, read.is_redelivery) == (
        1_790_000_000_000,
        "r" * 32,
        False,
    )


def test_group_events_have_no_user() -> None:
    read = read_event(event(source={"type": "group", "groupId": "C1", "userId": USER}))
    assert read.problem is None
    assert read.user_id is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"webhookEventId": "A" * 65}, "webhookEventId: longer than 64"),
        ({"webhookEventId": "id with spaces"}, "printable ASCII"),
        ({"webhookEventId": 7}, "webhookEventId: a number"),
        ({"type": ["message"]}, "type: a list"),
        ({"timestamp": "now"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": -1}, "timestamp"),
        ({"source": "user"}, "source: a string"),
        ({"source": {"type": "user", "userId": "U" + "a" * 80}}, "source.userId"),
        ({"replyToken": "r" * 101}, "replyToken"),
        ({"deliveryContext": {"isRedelivery": "yes"}}, "isRedelivery"),
        ({"message": "hello"}, "message: a string"),
        ({"message": {"id": "1", "type": "text"}}, "message.text: missing"),
        ({"message": {"id": "1", "type": "text", "text": "あ" * 5001}}, "5000"),
        ({"message": {"id": "1", "type": "text", "text": "😀" * 2501}}, "5000"),  # UTF-16 units
        ({"message": {"id": "1", "type": "text", "text": "a\x00b"}}, "NUL"),
        ({"message": {"id": "1", "type": "text", "text": "a\ud800"}}, "surrogate"),
        ({"type": "postback", "postback": {"data": "x" * 301}}, "300"),
        ({"type": "postback", "postback": {"data": 3}}, "postback.data"),
        ({"type": "postback", "postback": {"data": "x", "params": {"date": 1}}}, "params"),
        ({"type": "follow", "follow": {"isUnblocked": "no"}}, "isUnblocked"),
        ({"extra": float("nan")}, "NaN"),
        ({"extra": float("inf")}, "Infinity"),
        ({"extra": {"\x00key": 1}}, "NUL"),
        ({"extra": "x" * 10_001}, "longer than 10000"),
        ({"extra": list(range(6000))}, "more than 5000 values"),
    ],
)
def test_a_bad_field_makes_the_event_ignored_with_why(changes: dict[str, Any], reason: str) -> None:
    read = read_event(event(**changes))
    assert read.problem is not None and reason in read.problem, read.problem
    assert read.user_id is None  # nothing acts on it
    json.dumps(read.payload, allow_nan=False)  # storable as it is
    assert "\x00" not in json.dumps(read.payload)


def test_deep_nesting_is_ignored_and_its_copy_is_cut() -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    read = read_event(event(extra=deep))
    assert read.problem is not None and "nested deeper" in read.problem
    text = json.dumps(read.payload)
    assert text.count("[") <= MAX_DEPTH + 2


@pytest.mark.parametrize("raw", [1, "event", None, [event()], True])
def test_an_element_that_is_not_an_object_is_ignored(raw: Any) -> None:
    read = read_event(raw)
    assert read.problem is not None and "not an object" in read.problem
    assert read.event_id.startswith("unreadable-")
    assert read_event(raw).event_id == read.event_id  # the same content, the same id


def test_a_usable_id_is_kept_when_the_event_is_ignored() -> None:
    read = read_event(event(message="x"))
    assert read.event_id == "01JABCDEFGHJKMNPQRSTVWXYZ0"  # a redelivery is a duplicate


def test_empty_postback_data_is_well_formed() -> None:
    assert read_event(event(type="postback", postback={"data": ""})).problem is None


def test_safe_copy_replaces_what_a_database_refuses() -> None:
    copied = safe_copy({"a": "x\x00\ud800", "b": float("nan"), "c": 2**70})
    assert copied == {"a": "x\ufffd\ufffd", "b": None, "c": str(2**70)}
