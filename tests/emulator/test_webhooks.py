"""Simulated users, the webhooks they cause, and the control API."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft4Validator
from linebot.v3.messaging import MessagingApi, PushMessageRequest, ReplyMessageRequest, TextMessage
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import FollowEvent, MessageEvent, PostbackEvent, UnfollowEvent

from bot.clock import FrozenClock
from bot.emulator.client import EmulatorError
from bot.emulator.validation import load_spec
from tests.emulator.conftest import SECRET, Emu, Hook

ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


@cache
def webhook_document() -> dict[str, Any]:
    text = resources.files("bot.emulator").joinpath("spec", "webhook.yml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def plain_errors(schema_name: str, instance: Any) -> list[str]:
    """An independent check: the spec's schema objects as they are (webhook.yml uses no
    OAS-only keyword but `discriminator`, which a plain draft-4 validator ignores)."""
    document = webhook_document()
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return [error.message for error in Draft4Validator(schema).iter_errors(instance)]


def mapped(parent: str, value: str) -> str:
    """The subtype schema the spec's discriminator names for `value`."""
    mapping = webhook_document()["components"]["schemas"][parent]["discriminator"]["mapping"]
    return str(mapping[value]).rsplit("/", 1)[-1]


def assert_matches_webhook_spec(body: dict[str, Any]) -> None:
    # 1. the whole body, discriminators followed (the emulator's converter over webhook.yml)
    assert load_spec("webhook.yml").errors("CallbackRequest", body) == []
    # 2. the raw schema of the subtype each discriminator names, level by level
    assert plain_errors("CallbackRequest", body) == []
    for event in body["events"]:
        assert plain_errors(mapped("Event", event["type"]), event) == []
        assert plain_errors(mapped("Source", event["source"]["type"]), event["source"]) == []
        if event["type"] == "message":
            content = mapped("MessageContent", event["message"]["type"])
            assert plain_errors(content, event["message"]) == []


def test_spec_check_catches_a_bad_event() -> None:
    body: dict[str, Any] = {
        "destination": "U" + "0" * 32,
        "events": [
            {
                "type": "message",
                "mode": "active",
                "timestamp": 1,
                "webhookEventId": "x",
                "deliveryContext": {"isRedelivery": False},
                "source": {"type": "user", "userId": "U1"},
                "message": {"type": "text", "id": "1"},  # no text, no quoteToken
            }
        ],
    }
    errors = load_spec("webhook.yml").errors("CallbackRequest", body)
    assert {e.property for e in errors} == {
        "events[0].message.text",
        "events[0].message.quoteToken",
    }
    assert plain_errors("TextMessageContent", body["events"][0]["message"]) != []


# --- users ------------------------------------------------------------------------------------


def test_create_get_and_list_users(emulator: Emu) -> None:
    user = emulator.client.create_user("花子")
    assert re.fullmatch(r"U[0-9a-f]{32}", user["user_id"])
    assert (user["name"], user["state"]) == ("花子", "new")
    assert emulator.client.user(user["user_id"])["name"] == "花子"
    chosen = "U" + "a" * 32
    emulator.client.create_user("太郎", user_id=chosen)
    assert [u["user_id"] for u in emulator.client.users()] == [user["user_id"], chosen]
    with pytest.raises(EmulatorError) as duplicate:
        emulator.client.create_user("太郎", user_id=chosen)
    assert duplicate.value.status == 409
    with pytest.raises(EmulatorError) as missing:
        emulator.client.user("U" + "b" * 32)
    assert missing.value.status == 404
    response = requests.post(f"{emulator.url}/_emulator/users", json={}, timeout=5)
    assert response.status_code == 400


# --- follow / unfollow ------------------------------------------------------------------------


def test_follow_sends_a_signed_follow_event(
    emulator: Emu, hook: Hook, clock: FrozenClock, api: MessagingApi
) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    result = emulator.client.follow(user_id)
    assert result["status"] == 200
    (received,) = hook.received
    assert received.signature_valid
    body = received.body
    assert body["destination"] == api.get_bot_info().user_id
    (event,) = body["events"]
    assert event == result["event"]
    assert event["type"] == "follow"
    assert event["follow"] == {"isUnblocked": False}
    assert event["mode"] == "active"
    assert event["timestamp"] == int(clock.now().timestamp() * 1000)
    assert event["source"] == {"type": "user", "userId": user_id}
    assert ULID_RE.match(event["webhookEventId"])
    assert event["deliveryContext"] == {"isRedelivery": False}
    assert re.fullmatch(r"[0-9a-f]{32}", event["replyToken"])
    assert_matches_webhook_spec(body)
    # the official SDK's parser accepts the signature and the event
    parsed = WebhookParser(SECRET).parse(received.raw.decode("utf-8"), received.signature)
    assert isinstance(parsed[0], FollowEvent) and parsed[0].follow.is_unblocked is False
    # the follow reply token works
    api.reply_message(
        ReplyMessageRequest(replyToken=event["replyToken"], messages=[TextMessage(text="ようこそ")])
    )
    assert emulator.client.messages(user_id)["messages"][0]["message"]["text"] == "ようこそ"


def test_follow_unfollow_follow_is_an_unblock(emulator: Emu, hook: Hook) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    unfollow = emulator.client.unfollow(user_id)["event"]
    assert unfollow["type"] == "unfollow" and "replyToken" not in unfollow
    assert emulator.client.user(user_id)["state"] == "blocked"
    again = emulator.client.follow(user_id)["event"]
    assert again["follow"] == {"isUnblocked": True}
    assert [e["type"] for e in hook.events] == ["follow", "unfollow", "follow"]
    for body in hook.bodies:
        assert_matches_webhook_spec(body)
    parser = WebhookParser(SECRET)
    parsed = [parser.parse(r.raw.decode(), r.signature)[0] for r in hook.received]
    assert isinstance(parsed[1], UnfollowEvent)
    assert isinstance(parsed[2], FollowEvent) and parsed[2].follow.is_unblocked is True


def test_follow_and_unfollow_need_the_right_state(emulator: Emu, friend: str) -> None:
    with pytest.raises(EmulatorError) as twice:
        emulator.client.follow(friend)
    assert twice.value.status == 409
    emulator.client.unfollow(friend)
    with pytest.raises(EmulatorError):
        emulator.client.unfollow(friend)
    with pytest.raises(EmulatorError) as blocked_text:
        emulator.client.text(friend, "hi")
    assert blocked_text.value.status == 409


# --- messages and postbacks -------------------------------------------------------------------


def test_text_event(emulator: Emu, hook: Hook, friend: str) -> None:
    event = emulator.client.text(friend, "予約したい 😀")["event"]
    assert event["type"] == "message"
    message = event["message"]
    assert (message["type"], message["text"]) == ("text", "予約したい 😀")
    assert message["id"].isdigit() and message["quoteToken"]
    assert event["replyToken"]
    body = hook.bodies[-1]
    assert_matches_webhook_spec(body)
    assert hook.received[-1].signature_valid
    parsed = WebhookParser(SECRET).parse(
        hook.received[-1].raw.decode(), hook.received[-1].signature
    )
    assert isinstance(parsed[0], MessageEvent) and parsed[0].message.text == "予約したい 😀"


@pytest.mark.parametrize(
    "params",
    [None, {"date": "2026-12-01"}, {"time": "10:00"}, {"datetime": "2026-12-01T10:00"}],
)
def test_postback_event(
    emulator: Emu, hook: Hook, friend: str, params: dict[str, str] | None
) -> None:
    result = emulator.client.postback(friend, "action=reserve&slot=1", "予約する", params)
    event = result["event"]
    assert event["type"] == "postback"
    expected: dict[str, Any] = {"data": "action=reserve&slot=1"}
    if params:
        expected["params"] = params
    assert event["postback"] == expected
    assert event["replyToken"]
    assert_matches_webhook_spec(hook.bodies[-1])
    parsed = WebhookParser(SECRET).parse(
        hook.received[-1].raw.decode(), hook.received[-1].signature
    )
    assert isinstance(parsed[0], PostbackEvent)
    assert parsed[0].postback.data == "action=reserve&slot=1"


@pytest.mark.parametrize("params", [{"date": "2026/12/01"}, {"time": "10時"}, {"datetime": 5}])
def test_malformed_postback_params_are_refused(
    emulator: Emu, friend: str, params: dict[str, Any]
) -> None:
    response = requests.post(
        f"{emulator.url}/_emulator/users/{friend}/postback",
        json={"data": "x", "params": params},
        timeout=5,
    )
    assert response.status_code == 400


def test_result_carries_the_bots_status(emulator: Emu, hook: Hook, friend: str) -> None:
    hook.status = 500
    result = emulator.client.text(friend, "hi")
    assert result["status"] == 500 and result["error"] is None


def test_webhook_url_can_be_set_at_run_time(emulator: Emu, hook: Hook, friend: str) -> None:
    emulator.client.set_webhook_url(None)
    result = emulator.client.text(friend, "hi")
    assert result["status"] is None and "webhook URL" in result["error"]
    emulator.client.set_webhook_url(hook.url)
    assert emulator.client.config()["webhook_url"] == hook.url
    assert emulator.client.text(friend, "hi")["status"] == 200


def test_unreachable_bot_is_reported(emulator: Emu, friend: str) -> None:
    emulator.client.set_webhook_url("http://127.0.0.1:9/callback")
    result = emulator.client.text(friend, "hi")
    assert result["status"] is None and result["error"]


# --- raw events and redelivery ----------------------------------------------------------------


def test_post_arbitrary_events(emulator: Emu, hook: Hook, friend: str, api: MessagingApi) -> None:
    events = [
        {
            "type": "beacon",
            "mode": "active",
            "timestamp": 1700000000000,
            "source": {"type": "user", "userId": friend},
            "webhookEventId": "01HBEACON0000000000000000A",
            "deliveryContext": {"isRedelivery": False},
            "replyToken": "beacon-reply-token",
            "beacon": {"hwid": "d41d8cd98f", "type": "enter"},
        },
        {
            "type": "unsend",
            "mode": "active",
            "timestamp": 1700000000001,
            "source": {"type": "user", "userId": friend},
            "webhookEventId": "01HUNSEND0000000000000000A",
            "deliveryContext": {"isRedelivery": False},
            "unsend": {"messageId": "325708"},
        },
    ]
    result = emulator.client.post_events(events)
    assert result["status"] == 200
    body = hook.bodies[-1]
    assert body["events"] == events
    assert hook.received[-1].signature_valid
    assert_matches_webhook_spec(body)
    # a reply token inside a raw event is usable once, for the event's user
    api.reply_message(
        ReplyMessageRequest(
            replyToken="beacon-reply-token", messages=[TextMessage(text="いらっしゃいませ")]
        )
    )
    assert emulator.client.messages(friend)["messages"][-1]["message"]["text"] == "いらっしゃいませ"
    duplicate = emulator.client.post_events(events[1:], redeliver=True)
    assert duplicate["events"][0]["deliveryContext"] == {"isRedelivery": True}
    assert hook.bodies[-1]["events"][0]["webhookEventId"] == "01HUNSEND0000000000000000A"


def test_redeliver_a_past_event(emulator: Emu, hook: Hook, friend: str, api: MessagingApi) -> None:
    first = emulator.client.text(friend, "hi")["event"]
    api.reply_message(
        ReplyMessageRequest(replyToken=first["replyToken"], messages=[TextMessage(text="a")])
    )
    again = emulator.client.redeliver(first["webhookEventId"])["event"]
    assert again["webhookEventId"] == first["webhookEventId"]
    assert again["deliveryContext"] == {"isRedelivery": True}
    assert {k: v for k, v in again.items() if k != "deliveryContext"} == {
        k: v for k, v in first.items() if k != "deliveryContext"
    }
    assert hook.events[-1] == again
    assert_matches_webhook_spec(hook.bodies[-1])
    with pytest.raises(EmulatorError) as missing:
        emulator.client.redeliver("01HNOSUCHEVENT000000000000")
    assert missing.value.status == 404


# --- inspection -------------------------------------------------------------------------------


def test_messages_since(emulator: Emu, api: MessagingApi, friend: str) -> None:
    api.push_message(PushMessageRequest(to=friend, messages=[TextMessage(text="1")]))
    first = emulator.client.messages(friend)
    assert [m["message"]["text"] for m in first["messages"]] == ["1"]
    api.push_message(
        PushMessageRequest(to=friend, messages=[TextMessage(text="2"), TextMessage(text="3")])
    )
    later = emulator.client.messages(friend, since=first["last_seq"])
    assert [m["message"]["text"] for m in later["messages"]] == ["2", "3"]
    assert emulator.client.messages(friend, since=later["last_seq"])["messages"] == []
    item = later["messages"][0]
    assert set(item) >= {"seq", "via", "message", "at", "request_id"}


def test_webhook_log_and_reset(emulator: Emu, hook: Hook, friend: str, api: MessagingApi) -> None:
    api.push_message(PushMessageRequest(to=friend, messages=[TextMessage(text="1")]))
    log = emulator.client.webhooks()
    assert [w["body"]["events"][0]["type"] for w in log] == ["follow"]
    assert log[0]["status"] == 200 and SECRET not in json.dumps(log)
    emulator.client.reset()
    assert emulator.client.users() == []
    assert emulator.client.requests() == []
    assert emulator.client.stats()["billable_total"] == 0
    assert emulator.client.config()["webhook_url"] == hook.url  # configuration survives


def test_clock_drives_timestamps(emulator: Emu, friend: str, clock: FrozenClock) -> None:
    clock.advance(timedelta(days=3))
    event = emulator.client.text(friend, "hi")["event"]
    assert event["timestamp"] == int(clock.now().timestamp() * 1000)
