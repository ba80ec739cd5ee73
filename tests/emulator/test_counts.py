"""What LINE accepted and what reached whom: `/stats` per user, `/accepted`,
`/accepted/counts` and `/deliveries/counts` (the ground truth of exactly-once tests)."""

from __future__ import annotations

import uuid

import pytest
from linebot.v3.messaging import (
    ApiException,
    ImageMessage,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    StickerMessage,
    TextMessage,
)

from bot.emulator.store import message_label
from tests.emulator.conftest import Emu

PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"
REPLY = "/v2/bot/message/reply"


@pytest.fixture
def people(emulator: Emu, friend: str) -> tuple[str, str, str]:
    """A friend, a second friend and a user who blocked the account."""
    second = emulator.client.create_user("次郎")["user_id"]
    emulator.client.follow(second)
    blocked = emulator.client.create_user("三郎")["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    return friend, second, blocked


def test_stats_accepted_and_counts(
    emulator: Emu, api: MessagingApi, people: tuple[str, str, str]
) -> None:
    a, b, blocked = people
    key = str(uuid.uuid4())
    api.push_message(PushMessageRequest(to=a, messages=[TextMessage(text="one")]), key)
    with pytest.raises(ApiException):  # the retry: 409, not accepted again
        api.push_message(PushMessageRequest(to=a, messages=[TextMessage(text="one")]), key)
    api.multicast(MulticastRequest(to=[a, b, blocked, a], messages=[TextMessage(text="two")]))
    api.push_message(PushMessageRequest(to=blocked, messages=[TextMessage(text="three")]))
    token = emulator.client.text(a, "hello")["event"]["replyToken"]
    api.reply_message(ReplyMessageRequest(replyToken=token, messages=[TextMessage(text="pong")]))
    with pytest.raises(ApiException):  # invalid: not accepted
        api.push_message(PushMessageRequest(to="U" + "0" * 32, messages=[TextMessage(text="?")]))

    stats = emulator.client.stats()
    assert stats["accepted_requests_total"] == 4
    assert stats["accepted_requests_by_endpoint"] == {PUSH: 2, MULTICAST: 1, REPLY: 1}
    assert stats["responses_dropped_total"] == 0
    assert stats["users"] == {
        a: {
            "billable": 2,
            "delivered_messages": 3,
            "accepted_requests": {PUSH: 1, MULTICAST: 1, REPLY: 1},
        },
        b: {"billable": 1, "delivered_messages": 1, "accepted_requests": {MULTICAST: 1}},
        blocked: {
            "billable": 0,
            "delivered_messages": 0,
            "accepted_requests": {MULTICAST: 1, PUSH: 1},
        },
    }
    short = emulator.client.stats(per_user=False)
    assert "users" not in short and "billable_by_user" not in short
    assert short["billable_total"] == 3

    pushes = emulator.client.accepted(path=PUSH)
    assert [(p["recipients"], p["texts"], p["retry_key"]) for p in pushes] == [
        ([a], ["one"], key),
        ([blocked], ["three"], None),
    ]
    assert all(p["response_status"] == 200 and not p["response_dropped"] for p in pushes)
    assert pushes[0]["messages"] == [{"type": "text", "text": "one"}]
    assert pushes[0]["at"] == "2026-11-23T01:00:00Z"  # the emulator's clock
    (multicast,) = emulator.client.accepted(path=MULTICAST)
    assert multicast["recipients"] == [a, b, blocked]  # duplicates once
    assert [x["path"] for x in emulator.client.accepted(user_id=b)] == [MULTICAST]
    since = pushes[0]["seq"]
    assert [x["path"] for x in emulator.client.accepted(since=since)] == [MULTICAST, PUSH, REPLY]

    # What reached whom, by message text; replies can be left out.
    assert emulator.client.delivery_counts(via=["push", "multicast"]) == {
        a: {"one": 1, "two": 1},
        b: {"two": 1},
    }
    assert emulator.client.delivery_counts() == {a: {"one": 1, "two": 1, "pong": 1}, b: {"two": 1}}
    assert emulator.client.delivery_counts(user_id=b) == {b: {"two": 1}}
    # What LINE accepted for whom (the blocked user too: accepted, not delivered).
    assert emulator.client.accepted_counts(via="push,multicast") == {
        a: {"one": 1, "two": 1},
        b: {"two": 1},
        blocked: {"two": 1, "three": 1},
    }
    assert emulator.client.accepted_counts(path=PUSH) == {a: {"one": 1}, blocked: {"three": 1}}


def test_a_duplicate_shows_in_the_counts(emulator: Emu, api: MessagingApi, friend: str) -> None:
    """Two keys for one planned message (the bug exactly-once tests look for) count twice."""
    for _ in range(2):
        request = PushMessageRequest(to=friend, messages=[TextMessage(text="step 1")])
        api.push_message(request, str(uuid.uuid4()))
    assert emulator.client.delivery_counts(via="push") == {friend: {"step 1": 2}}
    assert emulator.client.accepted_counts() == {friend: {"step 1": 2}}


def test_a_dropped_response_is_accepted_and_counted_once(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_chaos({"accept_then_drop": 1.0})
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=friend, messages=[TextMessage(text="step 2")])
    with pytest.raises(Exception) as caught:
        api.push_message(request, key)
    assert not isinstance(caught.value, ApiException)
    emulator.client.clear_chaos()
    with pytest.raises(ApiException):
        api.push_message(request, key)  # 409
    assert emulator.client.delivery_counts() == {friend: {"step 2": 1}}
    (accepted,) = emulator.client.accepted()
    assert accepted["response_dropped"] is True
    assert emulator.client.stats()["users"][friend]["accepted_requests"] == {PUSH: 1}


def test_scripted_accept_then_fail_is_accepted_with_its_status(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.add_fault(path=PUSH, status=500, mode="accept_then_fail")
    with pytest.raises(ApiException):
        api.push_message(PushMessageRequest(to=friend, messages=[TextMessage(text="x")]))
    (accepted,) = emulator.client.accepted()
    assert accepted["response_status"] == 500 and accepted["response_dropped"] is False


def test_labels_of_other_message_types(emulator: Emu, api: MessagingApi, friend: str) -> None:
    image = ImageMessage(
        originalContentUrl="https://example.com/a.jpg", previewImageUrl="https://example.com/p.jpg"
    )
    api.push_message(
        PushMessageRequest(
            to=friend, messages=[image, StickerMessage(packageId="1", stickerId="2")]
        )
    )
    assert emulator.client.delivery_counts() == {
        friend: {"image:https://example.com/a.jpg": 1, "sticker:1/2": 1}
    }
    assert message_label({"type": "flex", "altText": "menu", "contents": {}}) == "flex:menu"
    assert message_label({"type": "template", "altText": "pick"}) == "template:pick"
    assert message_label({"type": "textV2", "text": "{a}"}) == "{a}"


def test_reset_forgets_the_counts(emulator: Emu, api: MessagingApi, friend: str) -> None:
    api.push_message(PushMessageRequest(to=friend, messages=[TextMessage(text="x")]))
    emulator.client.reset()
    assert emulator.client.accepted() == []
    assert emulator.client.delivery_counts() == {}
    stats = emulator.client.stats()
    assert stats["accepted_requests_total"] == 0 and stats["users"] == {}
