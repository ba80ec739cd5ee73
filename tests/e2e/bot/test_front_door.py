"""The front door (issue #18): a webhook is answered after one write and processed after;
no input a signed request can carry produces a 500 or hurts another event."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.line.signature import sign
from storage.models import OutboxMessage, WebhookEvent
from tests.e2e.bot.conftest import StackFactory
from tests.e2e.bot.test_webhook import NOW_MS, base_event, post, text_event
from tests.support import SECRET, LineUser, Stack

NAN = "__NaN__"  # placeholders: JSON text json.dumps cannot write
SURROGATE = "__surrogate__"


def raw_body(events: list[dict[str, Any]]) -> bytes:
    text = json.dumps({"destination": "U0", "events": events}, ensure_ascii=True)
    text = text.replace(f'"{NAN}"', "NaN").replace(SURROGATE, "\\ud800")
    return text.encode()


def send(stack: Stack, events: list[dict[str, Any]]) -> requests.Response:
    body = raw_body(events)
    response = post(stack, body, sign(SECRET, body))
    stack.settle()
    return response


def statuses(stack: Stack) -> dict[str, tuple[str, str | None]]:
    with stack.db.read() as session:
        rows = session.execute(
            select(WebhookEvent.webhook_event_id, WebhookEvent.status, WebhookEvent.error)
        ).all()
    return {event_id: (status, error) for event_id, status, error in rows}


def two_friends(stack: Stack) -> tuple[LineUser, LineUser]:
    first, second = stack.user("花子"), stack.user("次郎")
    for user in (first, second):
        user.follow()
        user.received()
    return first, second


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def bad_events(user_id: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Each bad event (from `user_id`, a friend) and a word of the reason it is ignored."""
    text = text_event

    def replaced(**changes: Any) -> dict[str, Any]:
        return {**text(user_id, "女性"), **changes}

    return {
        "event id of 70 characters": (replaced(webhookEventId="A" * 70), "webhookEventId"),
        "user id of 81 characters": (text("U" + "a" * 80, "女性"), "source.userId"),
        "NaN in the payload": (replaced(extra={"score": NAN}), "NaN"),
        "NUL in a text": (text(user_id, "女\x00性"), "NUL"),
        "message is a string": (replaced(message="女性"), "message"),
        "postback is a string": (base_event("postback", user_id, postback="x"), "postback"),
        "follow is a string": (base_event("follow", user_id, follow="x"), "follow"),
        "deliveryContext is a string": (replaced(deliveryContext="x"), "deliveryContext"),
        "lone surrogate in a text": (text(user_id, f"女{SURROGATE}"), "surrogate"),
        "lone surrogate in a user id": (text(f"U{SURROGATE}", "女性"), "surrogate"),
        "nested 200 deep": (replaced(extra=nested(200)), "nested"),
        "timestamp is a string": (replaced(timestamp="yesterday"), "timestamp"),
        "text longer than LINE allows": (text(user_id, "あ" * 5001), "message.text"),
    }


CASES = list(bad_events("U" + "0" * 32))


@pytest.mark.parametrize("case", CASES)
def test_a_bad_event_is_ignored_with_why_and_the_good_ones_around_it_are_applied(
    stack: Stack, case: str
) -> None:
    first, second = two_friends(stack)
    bad, reason = bad_events(first.user_id)[case]
    good_before, good_after = text_event(first.user_id, "女性"), text_event(second.user_id, "男性")
    response = send(stack, [good_before, bad, good_after])
    assert response.status_code == 200, response.text
    assert stack.friend(first)["tags"] == ["女性"]
    assert stack.friend(second)["tags"] == ["男性"]
    rows = statuses(stack)
    assert rows[good_before["webhookEventId"]][0] == "done"
    assert rows[good_after["webhookEventId"]][0] == "done"
    ignored = [error for status, error in rows.values() if status == "ignored"]
    assert len(ignored) == 1, rows
    assert reason in (ignored[0] or ""), ignored
    assert "failed" not in {status for status, _ in rows.values()}


@pytest.mark.parametrize(
    "data", ["", "garbage", "a=1&b", "stepline:", "v1:%%%", "=" * 300, "{", "survey\x7f"]
)
def test_empty_or_malformed_postback_data_is_no_failure(stack: Stack, data: str) -> None:
    first, second = two_friends(stack)
    bad = base_event("postback", first.user_id, replyToken="r" * 32, postback={"data": data})
    good = text_event(second.user_id, "男性")
    assert send(stack, [bad, good]).status_code == 200
    rows = statuses(stack)
    assert rows[bad["webhookEventId"]][0] in ("done", "ignored"), rows[bad["webhookEventId"]]
    assert rows[good["webhookEventId"]][0] == "done"
    assert stack.friend(second)["tags"] == ["男性"]


def test_a_body_too_deep_to_parse_is_refused_not_a_500(stack: Stack) -> None:
    body = b'{"events": [' + b"[" * 1000 + b"]" * 1000 + b"]}"
    response = post(stack, body, sign(SECRET, body))
    assert response.status_code == 400
    assert statuses(stack) == {}


def test_an_element_that_is_not_an_object_is_ignored_and_the_rest_applied(stack: Stack) -> None:
    first, _ = two_friends(stack)
    good = text_event(first.user_id, "女性")
    assert send(stack, [1, "x", None, good]).status_code == 200  # type: ignore[list-item]
    rows = statuses(stack)
    assert rows[good["webhookEventId"]][0] == "done"
    assert sorted(status for status, _ in rows.values()) == [
        "done",
        "done",
        "done",
        "ignored",
        "ignored",
        "ignored",
    ]


def test_the_door_answers_before_any_line_call_or_flow_work(make_stack: StackFactory) -> None:
    stack = make_stack()
    user = stack.user()
    # LINE is slow: every Messaging API call takes 1.5 s. The door does not wait for it.
    requests.put(
        f"{stack.emulator.url}/_emulator/chaos", json={"latency_ms": 1500}, timeout=10
    ).raise_for_status()
    event = base_event("follow", user.user_id, replyToken="r" * 32)
    body = raw_body([event])
    started = time.perf_counter()
    response = post(stack, body, sign(SECRET, body))
    answered = time.perf_counter() - started
    assert response.status_code == 200
    assert answered < 0.5, f"the door took {answered:.2f} s"
    assert statuses(stack)[event["webhookEventId"]][0] in ("received", "done")
    stack.settle()
    assert statuses(stack)[event["webhookEventId"]][0] == "done"
    assert stack.friend(user)["display_name"] == "花子"  # the profile call ran after the 200


def test_one_friends_events_apply_in_line_order_and_others_run_meanwhile(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [stack.user(f"利用者{n}") for n in range(3)]
    for user in users:
        user.follow()
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_on_text = stack.runtime.dispatcher.on_text

    def on_text(turn: Any, text: str) -> None:
        with lock:
            seen.append((turn.record.friend.line_user_id, text))
        real_on_text(turn, text)

    monkeypatch.setattr(stack.runtime.dispatcher, "on_text", on_text)
    first = users[0].user_id
    # LINE's order is the timestamp; the body lists them out of order.
    ordered = [text_event(first, text) for text in ("一", "二", "三")]
    for offset, event in enumerate(ordered):
        event["timestamp"] = NOW_MS + offset
    others = [text_event(user.user_id, "女性") for user in users[1:]]
    assert (
        send(stack, [ordered[2], others[0], ordered[0], others[1], ordered[1]]).status_code == 200
    )
    assert [text for user_id, text in seen if user_id == first] == ["一", "二", "三"]
    assert {user_id for user_id, _ in seen} == {user.user_id for user in users}


def test_late_answers_are_pushed_by_default(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    stale = text_event(user.user_id, "営業時間")
    stale["timestamp"] = NOW_MS - 55_000  # older than the 50 s window
    assert send(stack, [stale]).status_code == 200
    # The keyword's answer and the waiting question asked again: pushed, paid, not lost.
    vias = [m["via"] for m in user.received()]
    assert vias and set(vias) == {"push"}
    metrics = requests.get(f"{stack.bot.url}/metrics", timeout=10).text
    late = [line for line in metrics.splitlines() if line.startswith("stepline_late_replies_total")]
    assert len(late) == 1 and late[0].endswith('policy="push"} 1'), late


def test_late_answers_are_dropped_when_configured(make_stack: StackFactory) -> None:
    stack = make_stack(late_reply="drop")
    user = stack.user()
    user.follow()
    user.received()
    stale = text_event(user.user_id, "営業時間")
    stale["timestamp"] = NOW_MS - 55_000
    assert send(stack, [stale]).status_code == 200
    assert user.received() == []
    with stack.db.read() as session:
        skipped = session.scalars(
            select(OutboxMessage).where(OutboxMessage.cause == f"webhook:{stale['webhookEventId']}")
        ).all()
    assert {row.status for row in skipped} == {"skipped"}
    assert "reply window" in (skipped[0].error or "")


def test_a_retry_comes_due_and_is_swept(make_stack: StackFactory, monkeypatch: Any) -> None:
    stack = make_stack()
    user = stack.user()
    user.follow()
    calls = {"n": 0}
    real_on_text = stack.runtime.dispatcher.on_text

    def flaky(turn: Any, text: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        real_on_text(turn, text)

    monkeypatch.setattr(stack.runtime.dispatcher, "on_text", flaky)
    event = text_event(user.user_id, "女性")
    assert send(stack, [event]).status_code == 200
    assert statuses(stack)[event["webhookEventId"]][0] == "received"
    assert stack.events.sweep() == 0  # not due yet: backing off
    stack.clock.advance(timedelta(seconds=2))
    assert stack.events.sweep() == 1
    stack.settle()
    assert statuses(stack)[event["webhookEventId"]] == (
        "done",
        "ConnectionError: database went away",
    )
    assert stack.friend(user)["tags"] == ["女性"]


def test_an_event_that_kills_its_process_every_time_is_parked(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    now = stack.clock.now()
    with stack.db.write() as session:
        session.add(
            WebhookEvent(
                webhook_event_id="KILLER",
                type="message",
                line_user_id=user.user_id,
                payload=text_event(user.user_id, "女性"),
                status="received",
                attempts=5,  # STEPLINE_EVENT_ATTEMPTS: each claim counted one, none finished
                owner="a-process-that-died",
                lease_until=now - timedelta(seconds=1),
                due_at=now - timedelta(seconds=40),
                received_at=now - timedelta(seconds=40),
            )
        )
    assert stack.events.sweep() == 0
    status, error = statuses(stack)["KILLER"]
    assert status == "failed"
    assert "stopped during every attempt" in (error or "")
    assert stack.friend(user)["tags"] == []


def test_different_friends_events_are_applied_at_the_same_time(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stack.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time; this checks PostgreSQL's row locks")
    users = [stack.user(f"利用者{n}") for n in range(2)]
    for user in users:
        user.follow()
    spans: dict[str, tuple[float, float]] = {}
    real_on_text = stack.runtime.dispatcher.on_text

    def slow(turn: Any, text: str) -> None:
        started = time.monotonic()
        time.sleep(0.5)  # inside the friend's transaction
        real_on_text(turn, text)
        spans[turn.record.friend.line_user_id] = (started, time.monotonic())

    monkeypatch.setattr(stack.runtime.dispatcher, "on_text", slow)
    assert send(stack, [text_event(user.user_id, "女性") for user in users]).status_code == 200
    (first_start, first_end), (second_start, second_end) = spans.values()
    assert first_start < second_end and second_start < first_end  # they overlapped
