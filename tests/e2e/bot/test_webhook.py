"""`POST /callback`: signatures, once-only events, per-user serialisation, every event type."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import func, select

from bot.clock import FrozenClock
from bot.line.signature import sign
from storage.models import Friend, FriendTag, OutboxMessage, WebhookEvent
from tests.e2e.bot.conftest import StackFactory
from tests.support import SECRET, LineUser, Stack

NOW_MS = int(FrozenClock().now().timestamp() * 1000)
WEBHOOK_SPEC = Path(__file__).resolve().parents[3] / "bot" / "emulator" / "spec" / "webhook.yml"


def post(stack: Stack, body: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return requests.post(f"{stack.bot.url}/callback", data=body, headers=headers, timeout=30)


def signed(stack: Stack, payload: dict[str, Any]) -> requests.Response:
    """Post a signed body and wait until the bot has processed what it acknowledged."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = post(stack, body, sign(SECRET, body))
    stack.settle()
    return response


def count(stack: Stack, model: Any) -> int:
    with stack.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def base_event(kind: str, user_id: str = "U" + "a" * 32, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": NOW_MS,  # the stack's frozen clock: the reply token is fresh
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": uuid.uuid4().hex[:26].upper(),
        "deliveryContext": {"isRedelivery": False},
    }
    event.update(extra)
    return event


def text_event(user_id: str, text: str) -> dict[str, Any]:
    return base_event(
        "message",
        user_id,
        replyToken=uuid.uuid4().hex,
        message={"id": "1", "type": "text", "text": text, "quoteToken": "q"},
    )


@pytest.mark.parametrize("signature", [None, "", "bm90LXRoZS1zaWduYXR1cmU=", "garbage"])
def test_missing_or_wrong_signature_is_400_and_stores_nothing(
    stack: Stack, signature: str | None
) -> None:
    body = json.dumps(
        {"destination": "x", "events": [text_event("U" + "b" * 32, "営業時間")]}
    ).encode()
    response = post(stack, body, signature)
    assert response.status_code == 400
    assert "Signature" in response.json()["error"]
    assert count(stack, WebhookEvent) == 0
    assert count(stack, Friend) == 0


def test_signature_over_a_different_body_is_rejected(stack: Stack) -> None:
    body = json.dumps(
        {"events": [text_event("U" + "b" * 32, "営業時間")]}, ensure_ascii=False
    ).encode()
    tampered = body.replace("営業時間".encode(), "アンケート".encode())
    assert post(stack, tampered, sign(SECRET, body)).status_code == 400
    assert count(stack, WebhookEvent) == 0


def test_empty_events_is_200(stack: Stack) -> None:
    # LINE's "Verify" button sends this.
    response = signed(stack, {"destination": "Uxxx", "events": []})
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"events": "x"}', b"[" * 100_000])
def test_malformed_body_is_400(stack: Stack, body: bytes) -> None:
    response = post(stack, body, sign(SECRET, body))
    assert response.status_code == 400
    assert count(stack, WebhookEvent) == 0


def test_same_event_three_times_has_one_effect(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    event = text_event(user.user_id, "女性")
    first = signed(stack, {"events": [event]})
    redelivered = dict(event, deliveryContext={"isRedelivery": True})
    second = signed(stack, {"events": [redelivered]})
    third = signed(stack, {"events": [event, event]})
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    friend = stack.friend(user)
    assert friend["tags"] == ["女性"]
    assert friend["conversation"] == {"flow": "welcome", "state": "age"}
    with stack.db.read() as session:
        ids = session.scalars(
            select(WebhookEvent.webhook_event_id).where(WebhookEvent.type == "message")
        ).all()
        replies = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.cause == f"webhook:{event['webhookEventId']}")
        )
    assert ids == [event["webhookEventId"]]
    assert replies == 1


def test_redelivery_through_the_emulator_changes_nothing(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    result = user.say("女性")
    requests.post(
        f"{stack.emulator.url}/_emulator/redeliver",
        json={"webhookEventId": result["event"]["webhookEventId"]},
        timeout=10,
    ).raise_for_status()
    assert stack.friend(user)["conversation"]["state"] == "age"
    assert stack.friend(user)["tags"] == ["女性"]


def test_two_events_of_one_friend_at_once_are_serialised(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def answer(text: str) -> None:
        barrier.wait()
        statuses.append(signed(stack, {"events": [text_event(user.user_id, text)]}).status_code)

    threads = [threading.Thread(target=answer, args=(t,)) for t in ("女性", "男性")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    friend = stack.friend(user)
    # One answer took the gender question; the other arrived at the age question (invalid).
    assert len(set(friend["tags"]) & {"女性", "男性"}) == 1
    assert friend["conversation"] == {"flow": "welcome", "state": "age"}
    with stack.db.read() as session:
        assert session.scalar(select(func.count()).select_from(FriendTag)) == 1


def _examples(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """An event of every type webhook.yml defines (and each message type)."""
    group = {"type": "group", "groupId": "C" + "1" * 32, "userId": user_id}
    token = {"replyToken": uuid.uuid4().hex}
    messages = {
        "text": {"type": "text", "text": "こんにちは", "quoteToken": "q"},
        "image": {"type": "image", "contentProvider": {"type": "line"}, "quoteToken": "q"},
        "video": {
            "type": "video",
            "duration": 1000,
            "contentProvider": {"type": "line"},
            "quoteToken": "q",
        },
        "audio": {"type": "audio", "duration": 1000, "contentProvider": {"type": "line"}},
        "file": {"type": "file", "fileName": "a.pdf", "fileSize": 10},
        "location": {"type": "location", "latitude": 35.0, "longitude": 139.0, "address": "東京"},
        "sticker": {
            "type": "sticker",
            "packageId": "1",
            "stickerId": "1",
            "stickerResourceType": "STATIC",
            "quoteToken": "q",
        },
    }
    return {
        "message": [
            base_event("message", user_id, message={"id": str(i), **m}, **token)
            for i, m in enumerate(messages.values())
        ],
        "unsend": [base_event("unsend", user_id, unsend={"messageId": "1"})],
        "follow": [base_event("follow", user_id, follow={"isUnblocked": False}, **token)],
        "unfollow": [base_event("unfollow", user_id)],
        "join": [base_event("join", user_id, source=group, **token)],
        "leave": [base_event("leave", user_id, source=group)],
        "memberJoined": [
            base_event(
                "memberJoined",
                user_id,
                source=group,
                joined={"members": [{"type": "user", "userId": user_id}]},
                **token,
            )
        ],
        "memberLeft": [
            base_event(
                "memberLeft",
                user_id,
                source=group,
                left={"members": [{"type": "user", "userId": user_id}]},
            )
        ],
        "postback": [base_event("postback", user_id, postback={"data": "not-ours"}, **token)],
        "videoPlayComplete": [
            base_event("videoPlayComplete", user_id, videoPlayComplete={"trackingId": "t"}, **token)
        ],
        "beacon": [
            base_event("beacon", user_id, beacon={"hwid": "d41d8cd98f", "type": "enter"}, **token)
        ],
        "accountLink": [
            base_event("accountLink", user_id, link={"result": "ok", "nonce": "n"}, **token)
        ],
        "membership": [
            base_event(
                "membership", user_id, membership={"type": "joined", "membershipId": 1}, **token
            )
        ],
        "module": [
            base_event(
                "module",
                user_id,
                module={"type": "attached", "botId": "U1", "scopes": ["message.write"]},
            )
        ],
        "activated": [base_event("activated", user_id, chatControl={"expireAt": 1})],
        "deactivated": [base_event("deactivated", user_id)],
        "botSuspended": [base_event("botSuspended", user_id)],
        "botResumed": [base_event("botResumed", user_id)],
        "delivery": [base_event("delivery", user_id, delivery={"data": "x"})],
        "somethingNew": [base_event("somethingNew", user_id, surprise={"a": 1})],
    }


def test_every_event_type_is_stored_and_answered_200(stack: Stack) -> None:
    user_id = "U" + "c" * 32
    examples = _examples(user_id)
    spec = yaml.safe_load(WEBHOOK_SPEC.read_text())
    spec_types = set(spec["components"]["schemas"]["Event"]["discriminator"]["mapping"])
    assert spec_types <= set(examples), (
        f"event types without an example: {spec_types - set(examples)}"
    )
    message_types = set(spec["components"]["schemas"]["MessageContent"]["discriminator"]["mapping"])
    assert {e["message"]["type"] for e in examples["message"]} == message_types
    sent = 0
    for kind, events in examples.items():
        for event in events:
            response = signed(stack, {"destination": "U0", "events": [event]})
            assert response.status_code == 200, (kind, response.text)
            sent += 1
    with stack.db.read() as session:
        rows = session.scalars(select(WebhookEvent)).all()
    assert len(rows) == sent
    assert {row.status for row in rows} <= {"done", "ignored"}
    assert "somethingNew" in {row.type for row in rows}


def test_a_failing_event_is_retried_then_parked_and_touches_no_other(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(event_attempts=2)
    user = stack.user()
    user.follow()
    user.received()
    dispatcher = stack.runtime.dispatcher
    real_on_text = dispatcher.on_text

    def on_text(turn: Any, text: str) -> None:
        if text == "女性":
            raise RuntimeError("boom")
        real_on_text(turn, text)

    monkeypatch.setattr(dispatcher, "on_text", on_text)
    other = text_event(user.user_id, "営業時間")
    event = text_event(user.user_id, "女性")
    # Acknowledged: the events are stored; the failure is the bot's to retry, not LINE's.
    assert signed(stack, {"events": [event, other]}).status_code == 200
    assert event_row(stack, other).status == "done"  # the other event was applied
    row = event_row(stack, event)
    assert (row.status, row.attempts) == ("received", 1)
    assert "boom" in (row.error or "")
    assert row.payload["message"]["text"] == "女性"
    assert stack.friend(user)["tags"] == []  # its partial effects were rolled back

    stack.clock.advance(timedelta(seconds=3))  # past the first backoff (2 s)
    assert stack.events.sweep() == 1
    stack.settle()
    row = event_row(stack, event)
    assert (row.status, row.attempts) == ("failed", 2)  # parked after the last attempt
    assert stack.events.sweep() == 0  # a parked event is not retried by itself

    monkeypatch.setattr(dispatcher, "on_text", real_on_text)
    redelivered = dict(event, deliveryContext={"isRedelivery": True})
    assert signed(stack, {"events": [redelivered]}).status_code == 200
    friend = stack.friend(user)
    assert friend["tags"] == ["女性"]  # a redelivery of a parked event is applied, once
    assert friend["conversation"] == {"flow": "welcome", "state": "age"}
    assert event_row(stack, event).status == "done"
    assert signed(stack, {"events": [redelivered]}).status_code == 200  # now a duplicate
    assert stack.friend(user)["tags"] == ["女性"]


def event_row(stack: Stack, event: dict[str, Any]) -> WebhookEvent:
    with stack.db.read() as session:
        return session.scalars(
            select(WebhookEvent).where(WebhookEvent.webhook_event_id == event["webhookEventId"])
        ).one()


def test_group_and_room_messages_are_stored_but_not_answered(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    for source in (
        {"type": "group", "groupId": "C" + "1" * 32, "userId": user.user_id},
        {"type": "room", "roomId": "R" + "1" * 32, "userId": user.user_id},
    ):
        event = text_event(user.user_id, "女性")
        event["source"] = source
        assert signed(stack, {"events": [event]}).status_code == 200
    friend = stack.friend(user)
    assert friend["tags"] == []
    assert friend["conversation"] == {"flow": "welcome", "state": "gender"}
    assert count(stack, Friend) == 1
    with stack.db.read() as session:
        statuses = session.scalars(
            select(WebhookEvent.status).where(WebhookEvent.type == "message")
        ).all()
    assert statuses == ["ignored", "ignored"]


def test_user_driver_sees_the_reply(stack: Stack) -> None:
    user: LineUser = stack.user()
    user.follow()
    assert user.texts()
