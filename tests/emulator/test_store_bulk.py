"""One-to-many sends (multicast, broadcast, narrowcast) are kept as one record per request; what
users received, what is billable, what was dropped and the totals must read exactly as if each
delivery had been kept on its own. Driven over real HTTP (the official SDK, the control API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from linebot.v3.messaging import (
    BroadcastRequest,
    MessagingApi,
    MulticastRequest,
    NarrowcastRequest,
    PushMessageRequest,
    RedeliveryRecipient,
    StickerMessage,
    TextMessage,
)

from bot.emulator.store import EmulatorStore, SimUser
from tests.emulator.conftest import TOKEN, Emu

UNKNOWN = "U" + "e" * 32  # well formed, never created
STICKER = "sticker:446/1988"


def label(message: dict[str, Any]) -> str:
    if message["type"] == "sticker":
        return f"sticker:{message['packageId']}/{message['stickerId']}"
    return str(message["text"])


def inbox(emulator: Emu, user_id: str, since: int = 0) -> list[dict[str, Any]]:
    return list(emulator.client.messages(user_id, since)["messages"])


def timeline(emulator: Emu, user_id: str) -> list[dict[str, Any]]:
    response = requests.get(f"{emulator.url}/_emulator/users/{user_id}/timeline", timeout=10)
    response.raise_for_status()
    return list(response.json()["items"])


@pytest.fixture
def people(emulator: Emu) -> tuple[list[str], str]:
    """Three friends and a user who blocked the account."""
    friends = []
    for name in ("一郎", "二郎", "三郎"):
        user_id = emulator.client.create_user(name)["user_id"]
        emulator.client.follow(user_id)
        friends.append(user_id)
    blocked = emulator.client.create_user("四郎")["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    return friends, blocked


def send_everything(api: MessagingApi, friends: list[str], blocked: str) -> dict[str, str]:
    """push → multicast (text + sticker; to a blocked and an unknown user too) → broadcast →
    push → narrowcast to whoever got the multicast. Returns the request ids by name."""
    a, b, c = friends
    ids: dict[str, str] = {}
    ids["push"] = api.push_message_with_http_info(
        PushMessageRequest(to=a, messages=[TextMessage(text="push")])
    ).headers["x-line-request-id"]
    multicast = MulticastRequest(
        to=[a, b, blocked, UNKNOWN, c],
        messages=[
            TextMessage(text="campaign"),
            StickerMessage(package_id="446", sticker_id="1988"),
        ],
    )
    ids["multicast"] = api.multicast_with_http_info(multicast).headers["x-line-request-id"]
    broadcast = BroadcastRequest(messages=[TextMessage(text="all")])
    ids["broadcast"] = api.broadcast_with_http_info(broadcast).headers["x-line-request-id"]
    ids["later"] = api.push_message_with_http_info(
        PushMessageRequest(to=b, messages=[TextMessage(text="later")])
    ).headers["x-line-request-id"]
    again = NarrowcastRequest(
        messages=[TextMessage(text="again")],
        recipient=RedeliveryRecipient(request_id=ids["multicast"]),
    )
    sent = api.narrowcast_with_http_info(again)
    assert sent.status_code == 202
    ids["narrowcast"] = sent.headers["x-line-request-id"]
    return ids


def test_each_user_reads_their_deliveries_in_seq_order(
    emulator: Emu, api: MessagingApi, people: tuple[list[str], str]
) -> None:
    friends, blocked = people
    a, b, c = friends
    ids = send_everything(api, friends, blocked)

    expected = {
        a: [
            ("push", "push"),
            ("multicast", "campaign"),
            ("multicast", STICKER),
            ("broadcast", "all"),
            ("narrowcast", "again"),
        ],
        b: [
            ("multicast", "campaign"),
            ("multicast", STICKER),
            ("broadcast", "all"),
            ("push", "later"),
            ("narrowcast", "again"),
        ],
        c: [
            ("multicast", "campaign"),
            ("multicast", STICKER),
            ("broadcast", "all"),
            ("narrowcast", "again"),
        ],
    }
    got = {user_id: inbox(emulator, user_id) for user_id in friends}
    for user_id, messages in got.items():
        assert [(m["via"], label(m["message"])) for m in messages] == expected[user_id]
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        by_via = {m["via"]: m["request_id"] for m in messages}
        assert by_via["multicast"] == ids["multicast"]
        assert by_via["broadcast"] == ids["broadcast"]
        assert by_via["narrowcast"] == ids["narrowcast"]
    assert inbox(emulator, blocked) == []

    everything = [m for messages in got.values() for m in messages]
    message_ids = [m["id"] for m in everything]
    assert len(set(message_ids)) == len(message_ids) == 14
    assert all(i.isdigit() and len(i) == 18 for i in message_ids)
    seqs = [m["seq"] for m in everything]
    assert len(set(seqs)) == len(seqs)  # unique across users too
    # Text and sticker messages are quotable: every one has its own token.
    tokens = [m["quoteToken"] for m in everything]
    assert all(isinstance(t, str) and len(t) > 20 for t in tokens)
    assert len(set(tokens)) == len(tokens)

    # Materialised again on every read: the same seqs, ids and tokens.
    assert {user_id: inbox(emulator, user_id) for user_id in friends} == got

    # `since` inside a multicast's messages: only what came after.
    first_multicast = got[b][0]
    assert inbox(emulator, b, since=first_multicast["seq"]) == got[b][1:]
    assert inbox(emulator, b, since=got[b][-1]["seq"]) == []

    # The simulator's timeline shows the same bot messages (the follows are user actions).
    bot_items = [i for i in timeline(emulator, a) if i["from"] == "bot"]
    assert [(i["seq"], i["id"], i["via"]) for i in bot_items] == [
        (m["seq"], m["id"], m["via"]) for m in got[a]
    ]
    assert all(i["billable"] for i in bot_items)


def test_billing_dropped_and_totals_count_every_recipient(
    emulator: Emu, api: MessagingApi, people: tuple[list[str], str]
) -> None:
    friends, blocked = people
    a, b, c = friends
    ids = send_everything(api, friends, blocked)

    dropped = emulator.client.dropped()
    assert [(d["user_id"], d["via"], d["reason"], d["request_id"]) for d in dropped] == [
        (blocked, "multicast", "blocked", ids["multicast"]),
        (UNKNOWN, "multicast", "unknown_user", ids["multicast"]),
    ]
    assert [[label(m) for m in d["messages"]] for d in dropped] == [["campaign", STICKER]] * 2

    stats = emulator.client.stats()
    assert stats["billable_total"] == 11
    assert stats["billable_by_user"] == {a: 4, b: 4, c: 3}
    assert stats["billable_by_via"] == {
        "push": 2,
        "multicast": 3,
        "broadcast": 3,
        "narrowcast": 3,
    }
    assert stats["delivered_messages_total"] == 14
    assert stats["delivered_messages_by_via"] == {
        "reply": 0,
        "push": 2,
        "multicast": 6,
        "broadcast": 3,
        "narrowcast": 3,
    }
    assert stats["dropped_total"] == 2
    assert stats["dropped_by_reason"] == {"blocked": 1, "unknown_user": 1}
    assert {uid: (u["billable"], u["delivered_messages"]) for uid, u in stats["users"].items()} == {
        a: (4, 5),
        b: (4, 5),
        c: (3, 4),
        blocked: (0, 0),
        UNKNOWN: (0, 0),
    }
    assert emulator.client.stats(per_user=False)["billable_total"] == 11
    # The monthly usage counts each recipient of a one-to-many send.
    assert api.get_message_quota_consumption().total_usage == 11

    assert emulator.client.delivery_counts(via="multicast") == {
        user_id: {"campaign": 1, STICKER: 1} for user_id in friends
    }
    assert emulator.client.delivery_counts(via=["broadcast", "narrowcast"]) == {
        user_id: {"all": 1, "again": 1} for user_id in friends
    }


def test_redelivery_targets_exactly_who_received_the_multicast(
    emulator: Emu, api: MessagingApi, people: tuple[list[str], str]
) -> None:
    friends, blocked = people
    ids = send_everything(api, friends, blocked)
    progress = api.get_narrowcast_progress(ids["narrowcast"])
    assert (progress.phase, progress.target_count, progress.success_count) == ("succeeded", 3, 3)
    (record,) = [n for n in emulator.client.narrowcasts() if n["requestId"] == ids["narrowcast"]]
    assert sorted(record["recipients"]) == sorted(friends)  # not the blocked or unknown user
    # A redelivery of the push (not a one-to-many send) is refused.
    response = requests.post(
        f"{emulator.url}/v2/bot/message/narrowcast",
        data=json.dumps(
            {
                "messages": [{"type": "text", "text": "x"}],
                "recipient": {"type": "redelivery", "requestId": ids["push"]},
            }
        ),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400


def test_reset_forgets_bulk_sends_and_seqs_keep_rising(
    emulator: Emu, api: MessagingApi, people: tuple[list[str], str]
) -> None:
    friends, blocked = people
    send_everything(api, friends, blocked)
    last = max(m["seq"] for user_id in friends for m in inbox(emulator, user_id))
    emulator.client.reset()
    emulator.client.add_friends(friends)  # the same ids, as new friends
    assert all(inbox(emulator, user_id) == [] for user_id in friends)
    stats = emulator.client.stats()
    assert (stats["billable_total"], stats["delivered_messages_total"]) == (0, 0)

    api.multicast(MulticastRequest(to=friends, messages=[TextMessage(text="fresh")]))
    got = [inbox(emulator, user_id) for user_id in friends]
    assert [[label(m["message"]) for m in messages] for messages in got] == [["fresh"]] * 3
    assert all(m["seq"] > last for messages in got for m in messages)
    assert emulator.client.stats()["billable_by_user"] == dict.fromkeys(friends, 1)


def test_per_user_counts_read_between_sends_count_each_send_once(
    emulator: Emu, api: MessagingApi, people: tuple[list[str], str]
) -> None:
    """Per-user counts of one-to-many sends are added up when read: reading them between
    sends (and twice in a row) counts every send exactly once."""
    friends, _blocked = people
    a, b, c = friends
    mine = [a, b]

    def per_user() -> dict[str, tuple[int, dict[str, int]]]:
        users = emulator.client.stats()["users"]
        return {
            uid: (users[uid]["delivered_messages"], users[uid]["accepted_requests"])
            for uid in friends
            if uid in users
        }

    api.multicast(MulticastRequest(to=mine, messages=[TextMessage(text="一")]))
    multicast = "/v2/bot/message/multicast"
    assert per_user() == {a: (1, {multicast: 1}), b: (1, {multicast: 1})}
    assert per_user() == {a: (1, {multicast: 1}), b: (1, {multicast: 1})}
    assert emulator.client.delivery_counts(via="multicast") == {a: {"一": 1}, b: {"一": 1}}

    api.multicast(MulticastRequest(to=friends, messages=[TextMessage(text="二")] * 2))
    api.push_message(PushMessageRequest(to=c, messages=[TextMessage(text="三")]))
    assert emulator.client.delivery_counts(via="multicast") == {
        a: {"一": 1, "二": 2},
        b: {"一": 1, "二": 2},
        c: {"二": 2},
    }
    push = "/v2/bot/message/push"
    assert per_user() == {
        a: (3, {multicast: 2}),
        b: (3, {multicast: 2}),
        c: (3, {multicast: 1, push: 1}),
    }


def test_store_lists_every_delivery_and_billable_in_order() -> None:
    """`deliveries()` and `billable()` (no HTTP endpoint reads them): one entry per message per
    recipient and per recipient, in the order they were sent."""
    store = EmulatorStore()
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    friends = [f"U{i:032x}" for i in range(1, 4)]
    store.add_friends(friends, now)
    text = {"type": "text", "text": "hi"}
    image = {"type": "image", "originalContentUrl": "https://x/a.png", "previewImageUrl": "p"}
    flex = {"type": "flex", "altText": "card", "contents": {}}

    def reason(user: SimUser | None) -> str | None:
        return None if user is not None and user.state == "friend" else "unknown_user"

    store.deliver(friends[1], "push", [text], [{"id": "1", "quoteToken": "q"}], "r-push", now)
    reached = store.deliver_many(
        [friends[0], UNKNOWN, friends[2]],
        "multicast",
        [image, flex],
        reason,
        "r-multi",
        now,
        quotable=[True, False],
    )
    assert reached == 2
    store.deliver(friends[0], "reply", [text], [{"id": "2"}], "r-reply", now)

    listed = store.deliveries()
    assert [(d.user_id, d.via, d.message["type"]) for d in listed] == [
        (friends[1], "push", "text"),
        (friends[0], "multicast", "image"),
        (friends[0], "multicast", "flex"),
        (friends[2], "multicast", "image"),
        (friends[2], "multicast", "flex"),
        (friends[0], "reply", "text"),
    ]
    assert [d.seq for d in listed] == sorted(d.seq for d in listed)
    bulk = listed[1:5]
    assert [d.quote_token is not None for d in bulk] == [True, False, True, False]
    assert len({d.message_id for d in listed}) == len(listed)
    assert store.deliveries() == listed  # the same values on every read
    for user_id in friends:
        assert store.deliveries_for(user_id) == [d for d in listed if d.user_id == user_id]
    assert [(b.user_id, b.via, b.request_id) for b in store.billable()] == [
        (friends[1], "push", "r-push"),
        (friends[0], "multicast", "r-multi"),
        (friends[2], "multicast", "r-multi"),
    ]
    assert [(d.user_id, d.reason) for d in store.dropped()] == [(UNKNOWN, "unknown_user")]
