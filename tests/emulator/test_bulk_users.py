"""`POST /_emulator/users/bulk`: many friends at once (benchmarks, bulk tests), all or nothing;
a multicast to them is delivered once to each, strangers and blocked users dropped."""

from __future__ import annotations

import uuid

import requests
from linebot.v3.messaging import MessagingApi, MulticastRequest, TextMessage

from tests.emulator.conftest import Emu


def bulk(emulator: Emu, user_ids: list[object]) -> requests.Response:
    return requests.post(
        f"{emulator.url}/_emulator/users/bulk", json={"user_ids": user_ids}, timeout=10
    )


def test_bulk_friends_receive_a_multicast_once_each(emulator: Emu, api: MessagingApi) -> None:
    users = [f"U{uuid.uuid4().hex}" for _ in range(300)]
    response = bulk(emulator, users)
    assert response.status_code == 201, response.text
    assert response.json() == {"created": 300}
    assert all(u["is_friend"] for u in emulator.client.users() if u["user_id"] in users)

    blocked = users[0]
    emulator.client.unfollow(blocked)
    stranger = f"U{uuid.uuid4().hex}"
    api.multicast(MulticastRequest(to=[*users, stranger][:500], messages=[TextMessage(text="冬")]))
    counts = requests.get(
        f"{emulator.url}/_emulator/deliveries/counts", params={"via": "multicast"}, timeout=10
    ).json()
    assert {u: counts[u] for u in users[1:]} == {u: {"冬": 1} for u in users[1:]}
    assert blocked not in counts and stranger not in counts
    reasons = emulator.client.stats()["dropped_by_reason"]
    assert reasons == {"blocked": 1, "unknown_user": 1}


def test_bad_or_taken_ids_create_nothing(emulator: Emu) -> None:
    taken = f"U{uuid.uuid4().hex}"
    assert bulk(emulator, [taken]).status_code == 201
    fresh = f"U{uuid.uuid4().hex}"

    bad = bulk(emulator, [fresh, "Unot-an-id"])
    assert bad.status_code == 400
    assert "user_ids[1]" in bad.text
    conflict = bulk(emulator, [fresh, taken])
    assert conflict.status_code == 409
    repeated = bulk(emulator, [fresh, fresh])
    assert repeated.status_code == 409
    assert bulk(emulator, []).status_code == 400
    assert fresh not in {u["user_id"] for u in emulator.client.users()}
