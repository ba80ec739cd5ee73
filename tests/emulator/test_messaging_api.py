"""The Messaging API paths, driven through the official SDK over real HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    Message,
    MessageAction,
    MessagingApi,
    MulticastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    StickerMessage,
    TextMessage,
)

from bot.clock import FrozenClock
from bot.emulator.messaging import AUTH_FAILED, AUTH_REQUIRED
from tests.emulator.conftest import TOKEN, Emu, Hook


def error_body(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


def header(exc: ApiException, name: str) -> str | None:
    assert exc.headers is not None
    value = exc.headers.get(name)
    return str(value) if value is not None else None


def push(api: MessagingApi, to: str, *messages: Message, key: str | None = None) -> Any:
    request = PushMessageRequest(to=to, messages=list(messages))
    return api.push_message_with_http_info(request, x_line_retry_key=key)


def received(emulator: Emu, user_id: str) -> list[dict[str, Any]]:
    return list(emulator.client.messages(user_id)["messages"])


def quick_reply(*actions: Any) -> QuickReply:
    return QuickReply.construct(items=[QuickReplyItem(action=a) for a in actions])


# --- authentication ---------------------------------------------------------------------------


def test_wrong_access_token_is_401(emulator: Emu, friend: str) -> None:
    with (
        ApiClient(Configuration(host=emulator.url, access_token="wrong")) as client,
        pytest.raises(ApiException) as caught,
    ):
        push(MessagingApi(client), friend, TextMessage(text="hi"))
    assert caught.value.status == 401
    assert error_body(caught.value) == {"message": AUTH_FAILED}
    assert received(emulator, friend) == []


def test_missing_authorization_header_is_401(emulator: Emu, friend: str) -> None:
    response = requests.get(f"{emulator.url}/v2/bot/profile/{friend}", timeout=5)
    assert response.status_code == 401
    assert response.json() == {"message": AUTH_REQUIRED}


# --- push -------------------------------------------------------------------------------------


def test_push_delivers_in_order_with_sent_messages(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    result = push(
        api, friend, TextMessage(text="一つ目"), StickerMessage(packageId="446", stickerId="1988")
    )
    assert result.status_code == 200
    sent = result.data.sent_messages
    assert len(sent) == 2 and all(m.id.isdigit() for m in sent)
    assert sent[0].quote_token
    request_id = result.headers["x-line-request-id"]
    got = received(emulator, friend)
    assert [m["message"] for m in got] == [
        {"type": "text", "text": "一つ目"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    ]
    assert [m["via"] for m in got] == ["push", "push"]
    assert {m["request_id"] for m in got} == {request_id}
    assert got[0]["seq"] < got[1]["seq"]
    assert [m["id"] for m in got] == [m.id for m in sent]


def test_push_to_unknown_or_malformed_user_is_400(emulator: Emu, api: MessagingApi) -> None:
    with pytest.raises(ApiException) as caught:
        push(api, "U" + "0" * 32, TextMessage(text="hi"))
    assert caught.value.status == 400
    assert error_body(caught.value) == {"message": "Failed to send messages"}
    with pytest.raises(ApiException) as caught:
        push(api, "someone", TextMessage(text="hi"))
    assert caught.value.status == 400
    assert "'to'" in error_body(caught.value)["message"]


def test_blocked_user_receives_nothing_and_costs_nothing(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.unfollow(friend)
    result = push(api, friend, TextMessage(text="戻ってきて"))
    assert result.status_code == 200  # LINE accepts it, but does not deliver
    api.multicast(MulticastRequest(to=[friend], messages=[TextMessage(text="セール")]))
    assert received(emulator, friend) == []
    dropped = emulator.client.dropped()
    assert [(d["user_id"], d["via"], d["reason"]) for d in dropped] == [
        (friend, "push", "blocked"),
        (friend, "multicast", "blocked"),
    ]
    assert emulator.client.stats()["billable_total"] == 0
    assert api.get_message_quota_consumption().total_usage == 0


def test_user_who_never_followed_receives_no_push(emulator: Emu, api: MessagingApi) -> None:
    stranger = emulator.client.create_user("未登録")["user_id"]
    assert push(api, stranger, TextMessage(text="hi")).status_code == 200
    assert received(emulator, stranger) == []
    assert emulator.client.dropped()[0]["reason"] == "not_friend"


# --- limits and schema ------------------------------------------------------------------------


def test_six_messages_are_rejected(emulator: Emu, api: MessagingApi, friend: str) -> None:
    request = PushMessageRequest.construct(
        to=friend, messages=[TextMessage(text=str(i)) for i in range(6)]
    )
    with pytest.raises(ApiException) as caught:
        api.push_message(request)
    assert caught.value.status == 400
    body = error_body(caught.value)
    assert body["message"] == "The request body has 1 error(s)"
    assert body["details"] == [{"message": "Size must be between 1 and 5", "property": "messages"}]
    assert received(emulator, friend) == []


def test_501_multicast_recipients_are_rejected(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    to = [friend] + [f"U{i:032x}" for i in range(500)]
    request = MulticastRequest.construct(to=to, messages=[TextMessage(text="hi")])
    with pytest.raises(ApiException) as caught:
        api.multicast(request)
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {"message": "Size must be between 1 and 500", "property": "to"}
    ]
    assert received(emulator, friend) == []
    # 500 is fine (unknown ids among them are accepted and dropped)
    api.multicast(MulticastRequest(to=to[:500], messages=[TextMessage(text="hi")]))
    assert len(received(emulator, friend)) == 1


def test_14_quick_reply_items_are_rejected(emulator: Emu, api: MessagingApi, friend: str) -> None:
    actions = [MessageAction(label=f"{i}", text=f"{i}") for i in range(14)]
    message = TextMessage(text="選んでください", quickReply=quick_reply(*actions))
    with pytest.raises(ApiException) as caught:
        push(api, friend, message)
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {"message": "Size must be between 0 and 13", "property": "messages[0].quickReply.items"}
    ]
    ok = TextMessage(text="選んでください", quickReply=quick_reply(*actions[:13]))
    assert push(api, friend, ok).status_code == 200


def test_text_length_counts_utf16_units(emulator: Emu, api: MessagingApi, friend: str) -> None:
    # 2,500 emoji outside the BMP are 2,500 code points but 5,000 UTF-16 units: the limit.
    at_limit = "😀" * 2500
    assert push(api, friend, TextMessage(text=at_limit)).status_code == 200
    over = at_limit + "a"  # 2,501 code points, 5,001 units
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text=over))
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {"message": "Length must be between 0 and 5000", "property": "messages[0].text"}
    ]
    assert len(received(emulator, friend)) == 1


def test_postback_data_over_300_is_rejected(emulator: Emu, api: MessagingApi, friend: str) -> None:
    too_long = PostbackAction.construct(type="postback", label="はい", data="x" * 301)
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="?", quickReply=quick_reply(too_long)))
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {
            "message": "Length must be between 0 and 300",
            "property": "messages[0].quickReply.items[0].action.data",
        }
    ]
    fits = PostbackAction(label="はい", data="x" * 300)
    assert push(api, friend, TextMessage(text="?", quickReply=quick_reply(fits))).status_code == 200


def test_quick_reply_label_over_20_is_rejected(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    action = MessageAction(label="あ" * 21, text="a")
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="?", quickReply=quick_reply(action)))
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {
            "message": "Length must be between 0 and 20",
            "property": "messages[0].quickReply.items[0].action.label",
        }
    ]


def test_message_without_type_violates_the_schema(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    untyped = Message.construct(quick_reply=None)  # serialises to {} (no "type")
    with pytest.raises(ApiException) as caught:
        push(api, friend, untyped)
    assert caught.value.status == 400
    assert error_body(caught.value)["details"] == [
        {"message": "must be specified", "property": "messages[0].type"}
    ]


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ({"type": "text"}, {"message": "must be specified", "property": "messages[0].text"}),
        ({"type": "txt", "text": "a"}, {"property": "messages[0].type"}),
        (
            {"type": "template", "altText": "a", "template": {"type": "buttons", "actions": []}},
            {"message": "must be specified", "property": "messages[0].template.text"},
        ),
        (
            {
                "type": "text",
                "text": "a",
                "quickReply": {"items": [{"type": "action", "action": {"label": "x"}}]},
            },
            {
                "message": "must be specified",
                "property": "messages[0].quickReply.items[0].action.type",
            },
        ),
    ],
)
def test_discriminated_schemas_are_enforced(
    emulator: Emu, friend: str, message: dict[str, Any], detail: dict[str, str]
) -> None:
    response = requests.post(
        f"{emulator.url}/v2/bot/message/push",
        json={"to": friend, "messages": [message]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400
    details = response.json()["details"]
    assert len(details) == 1 and details[0].items() >= detail.items()


def test_body_must_be_json(emulator: Emu) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{emulator.url}/v2/bot/message/push"
    bad_json = requests.post(
        url, data=b"{", headers={**auth, "Content-Type": "application/json"}, timeout=5
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["message"].startswith("The request body could not be parsed as JSON")
    wrong_type = requests.post(
        url, data=b"{}", headers={**auth, "Content-Type": "text/plain"}, timeout=5
    )
    assert wrong_type.status_code == 415


# --- retry keys -------------------------------------------------------------------------------


def test_retry_key_accepts_once_then_409(emulator: Emu, api: MessagingApi, friend: str) -> None:
    key = str(uuid.uuid4())
    first = push(api, friend, TextMessage(text="一度だけ"), key=key)
    assert first.status_code == 200
    first_id = first.headers["x-line-request-id"]
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="一度だけ"), key=key)
    conflict = caught.value
    assert conflict.status == 409
    assert header(conflict, "x-line-accepted-request-id") == first_id
    assert header(conflict, "x-line-request-id") not in (None, first_id)
    body = error_body(conflict)
    assert body["message"] == "The retry key is already accepted"
    assert body["sentMessages"] == [
        {"id": m.id, "quoteToken": m.quote_token} for m in first.data.sent_messages
    ]
    assert len(received(emulator, friend)) == 1
    assert emulator.client.stats()["billable_total"] == 1
    log = [(r["path"], r["status"], r["retry_key"]) for r in emulator.client.requests()]
    assert log == [("/v2/bot/message/push", 200, key), ("/v2/bot/message/push", 409, key)]


def test_multicast_retry_key_409_has_only_the_message(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    key = str(uuid.uuid4())
    request = MulticastRequest(to=[friend], messages=[TextMessage(text="hi")])
    first = api.multicast_with_http_info(request, x_line_retry_key=key)
    assert first.status_code == 200 and first.data == {}
    with pytest.raises(ApiException) as caught:
        api.multicast_with_http_info(request, x_line_retry_key=key)
    assert caught.value.status == 409
    assert error_body(caught.value) == {"message": "The retry key is already accepted"}
    assert header(caught.value, "x-line-accepted-request-id") == first.headers["x-line-request-id"]
    assert len(received(emulator, friend)) == 1


def test_malformed_retry_key_is_400_and_delivers_nothing(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="hi"), key="not-a-uuid")
    assert caught.value.status == 400
    assert "X-Line-Retry-Key" in error_body(caught.value)["message"]
    assert received(emulator, friend) == []


def test_rejected_request_does_not_consume_the_key(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    key = str(uuid.uuid4())
    with pytest.raises(ApiException):
        push(api, friend, Message.construct(), key=key)
    assert push(api, friend, TextMessage(text="ok"), key=key).status_code == 200


def test_retry_key_expires_after_24_hours(
    emulator: Emu, api: MessagingApi, friend: str, clock: FrozenClock
) -> None:
    key = str(uuid.uuid4())
    push(api, friend, TextMessage(text="1"), key=key)
    clock.advance(timedelta(hours=23, minutes=59))
    with pytest.raises(ApiException):
        push(api, friend, TextMessage(text="1"), key=key)
    clock.advance(timedelta(minutes=2))
    assert push(api, friend, TextMessage(text="1"), key=key).status_code == 200


def test_retry_key_is_refused_on_reply(emulator: Emu, friend: str) -> None:
    token = emulator.client.text(friend, "hi")["event"]["replyToken"]
    response = requests.post(
        f"{emulator.url}/v2/bot/message/reply",
        json={"replyToken": token, "messages": [{"type": "text", "text": "a"}]},
        headers={"Authorization": f"Bearer {TOKEN}", "X-Line-Retry-Key": str(uuid.uuid4())},
        timeout=5,
    )
    assert response.status_code == 400


# --- reply tokens -----------------------------------------------------------------------------


def test_bot_replies_inside_the_webhook(
    emulator: Emu, hook: Hook, api: MessagingApi, friend: str
) -> None:
    def answer(body: dict[str, Any]) -> None:
        for event in body["events"]:
            if event["type"] == "message":
                reply = ReplyMessageRequest(
                    replyToken=event["replyToken"],
                    messages=[TextMessage(text="echo: " + event["message"]["text"])],
                )
                api.reply_message(reply)

    hook.handler = answer
    result = emulator.client.text(friend, "こんにちは")
    assert result["status"] == 200
    got = received(emulator, friend)
    assert [(m["via"], m["message"]["text"]) for m in got] == [("reply", "echo: こんにちは")]
    assert emulator.client.stats()["billable_total"] == 0  # replies are free


def test_reply_token_is_single_use(emulator: Emu, api: MessagingApi, friend: str) -> None:
    token = emulator.client.text(friend, "hi")["event"]["replyToken"]
    request = ReplyMessageRequest(replyToken=token, messages=[TextMessage(text="a")])
    assert api.reply_message_with_http_info(request).status_code == 200
    with pytest.raises(ApiException) as caught:
        api.reply_message(request)
    assert caught.value.status == 400
    assert error_body(caught.value) == {"message": "Invalid reply token"}
    assert len(received(emulator, friend)) == 1


def test_reply_token_expires(
    emulator: Emu, api: MessagingApi, friend: str, clock: FrozenClock
) -> None:
    early = emulator.client.text(friend, "1")["event"]["replyToken"]
    late = emulator.client.text(friend, "2")["event"]["replyToken"]
    clock.advance(timedelta(seconds=59))
    api.reply_message(ReplyMessageRequest(replyToken=early, messages=[TextMessage(text="ok")]))
    clock.advance(timedelta(seconds=2))
    with pytest.raises(ApiException) as caught:
        api.reply_message(ReplyMessageRequest(replyToken=late, messages=[TextMessage(text="late")]))
    assert caught.value.status == 400
    assert error_body(caught.value) == {"message": "Invalid reply token"}
    assert [m["message"]["text"] for m in received(emulator, friend)] == ["ok"]


def test_unknown_reply_token_is_400(api: MessagingApi) -> None:
    with pytest.raises(ApiException) as caught:
        api.reply_message(ReplyMessageRequest(replyToken="nope", messages=[TextMessage(text="a")]))
    assert caught.value.status == 400


def test_reply_ttl_is_configurable(make_emulator: Callable[..., Emu], clock: FrozenClock) -> None:
    emu = make_emulator(reply_token_ttl_seconds=5)
    user = emu.client.create_user("太郎")["user_id"]
    token = emu.client.follow(user)["event"]["replyToken"]
    clock.advance(timedelta(seconds=6))
    response = requests.post(
        f"{emu.url}/v2/bot/message/reply",
        json={"replyToken": token, "messages": [{"type": "text", "text": "a"}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400


# --- profile, quota, bot info -----------------------------------------------------------------


def test_profile_of_known_and_unknown_users(emulator: Emu, api: MessagingApi) -> None:
    user = emulator.client.create_user("花子", picture_url="https://example.com/a.png")
    emulator.client.follow(user["user_id"])
    profile = api.get_profile(user["user_id"])
    assert (profile.user_id, profile.display_name) == (user["user_id"], "花子")
    assert profile.picture_url == "https://example.com/a.png"
    assert profile.language == "ja"
    with pytest.raises(ApiException) as caught:
        api.get_profile("U" + "f" * 32)
    assert caught.value.status == 404
    assert error_body(caught.value) == {"message": "Not found"}


def test_billable_counts_per_recipient_per_request(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    other = emulator.client.create_user("太郎")["user_id"]
    emulator.client.follow(other)
    blocked = emulator.client.create_user("次郎")["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    # five message objects to one friend: one billable message
    push(api, friend, *[TextMessage(text=str(i)) for i in range(5)])
    # multicast: two friends, one blocked, one unknown, one duplicate → two billable
    api.multicast(
        MulticastRequest(
            to=[friend, other, blocked, "U" + "e" * 32, other],
            messages=[TextMessage(text="a"), TextMessage(text="b")],
        )
    )
    token = emulator.client.text(friend, "hi")["event"]["replyToken"]
    api.reply_message(ReplyMessageRequest(replyToken=token, messages=[TextMessage(text="free")]))
    stats = emulator.client.stats()
    assert stats["billable_total"] == 3
    assert stats["billable_by_user"] == {friend: 2, other: 1}
    assert stats["billable_by_via"] == {"push": 1, "multicast": 2}
    assert stats["dropped_by_reason"] == {"blocked": 1, "unknown_user": 1}
    assert len(received(emulator, other)) == 2  # the duplicate id got it once
    assert api.get_message_quota_consumption().total_usage == 3


def test_quota(make_emulator: Callable[..., Emu], friend: str, api: MessagingApi) -> None:
    assert api.get_message_quota().type == "none"
    limited = make_emulator(monthly_quota=1)
    user = limited.client.create_user("花子")["user_id"]
    limited.client.follow(user)
    with ApiClient(Configuration(host=limited.url, access_token=TOKEN)) as client:
        limited_api = MessagingApi(client)
        quota = limited_api.get_message_quota()
        assert (quota.type, quota.value) == ("limited", 1)
        push(limited_api, user, TextMessage(text="1"))
        with pytest.raises(ApiException) as caught:
            push(limited_api, user, TextMessage(text="2"))
    assert caught.value.status == 429
    assert error_body(caught.value) == {"message": "You have reached your monthly limit."}


def test_bot_info_and_unknown_paths(
    emulator: Emu, api: MessagingApi, hook: Hook, friend: str
) -> None:
    info = api.get_bot_info()
    assert info.user_id == hook.bodies[0]["destination"]
    response = requests.get(
        f"{emulator.url}/v2/bot/not/emulated",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 404 and response.json() == {"message": "Not found"}


def test_request_log_has_no_credentials(emulator: Emu, api: MessagingApi, friend: str) -> None:
    push(api, friend, TextMessage(text="hi"))
    (entry,) = emulator.client.requests()
    assert entry["method"] == "POST" and entry["status"] == 200
    assert entry["body"] == {
        "to": friend,
        "messages": [{"type": "text", "text": "hi"}],
        "notificationDisabled": False,
    }
    assert TOKEN not in json.dumps(entry)


# --- injected faults --------------------------------------------------------------------------


def test_injected_failure_then_success(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.add_fault(path="/v2/bot/message/push", status=429, retry_after=3)
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="hi"))
    assert caught.value.status == 429
    assert header(caught.value, "Retry-After") == "3"
    assert received(emulator, friend) == []
    assert push(api, friend, TextMessage(text="hi")).status_code == 200


def test_accept_then_fail_consumes_the_retry_key(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.add_fault(path="/v2/bot/message/push", status=500, mode="accept_then_fail")
    key = str(uuid.uuid4())
    with pytest.raises(ApiException) as caught:
        push(api, friend, TextMessage(text="hi"), key=key)
    assert caught.value.status == 500
    with pytest.raises(ApiException) as retried:
        push(api, friend, TextMessage(text="hi"), key=key)
    assert retried.value.status == 409
    assert len(received(emulator, friend)) == 1


def test_concurrent_retries_are_accepted_exactly_once(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    key = str(uuid.uuid4())
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            status = push(api, friend, TextMessage(text="once"), key=key).status_code
        except ApiException as exc:
            status = exc.status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 7
    assert len(received(emulator, friend)) == 1


def test_injected_latency(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.add_fault(path="*", status=None, latency_ms=150)
    started = time.monotonic()
    assert push(api, friend, TextMessage(text="slow")).status_code == 200
    assert time.monotonic() - started >= 0.15
    assert emulator.client.config()["webhook_url"]  # the control API is never delayed
    assert len(received(emulator, friend)) == 1
