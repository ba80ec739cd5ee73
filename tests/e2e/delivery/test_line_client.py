"""The LINE client's push and multicast, against the emulator over HTTP: sent once per retry key,
LINE's refusals as typed errors, LINE's recipient limit checked before any request."""

from __future__ import annotations

import uuid

import pytest
import requests

from bot.line.client import LineClient, LineRejected
from tests.e2e.delivery.conftest import follower
from tests.support import TOKEN, Stack


@pytest.fixture
def client(stack: Stack) -> LineClient:
    return LineClient(stack.emulator.url, TOKEN)


def test_multicast_reaches_each_recipient_once_per_retry_key(
    stack: Stack, client: LineClient
) -> None:
    hanako, taro = follower(stack, "花子"), follower(stack, "太郎")
    key = str(uuid.uuid4())
    first = client.multicast(
        [hanako.user_id, taro.user_id],
        [
            {"type": "text", "text": "冬のセール"},
            {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        ],
        key,
    )
    assert first.request_id and first.accepted_request_id is None
    # The same key again (an answer lost on the way): LINE's 409 means it was accepted before.
    again = client.multicast(
        [hanako.user_id, taro.user_id], [{"type": "text", "text": "冬のセール"}], key
    )
    assert again.request_id is None and again.accepted_request_id == first.request_id
    for user in (hanako, taro):
        received = user.received()
        assert [d["message"]["type"] for d in received] == ["text", "sticker"]
        assert received[0]["message"]["text"] == "冬のセール"


def test_push_reaches_the_user_once_per_retry_key(stack: Stack, client: LineClient) -> None:
    hanako = follower(stack)
    key = str(uuid.uuid4())
    first = client.push(hanako.user_id, [{"type": "text", "text": "ご予約は明日です"}], key)
    assert first.request_id and first.accepted_request_id is None
    again = client.push(hanako.user_id, [{"type": "text", "text": "ご予約は明日です"}], key)
    assert again.accepted_request_id == first.request_id
    assert hanako.texts() == ["ご予約は明日です"]


def test_a_refused_multicast_is_a_typed_error_with_lines_details(
    stack: Stack, client: LineClient
) -> None:
    with pytest.raises(LineRejected) as refused:
        client.multicast(["not-a-user-id"], [{"type": "text", "text": "x"}], str(uuid.uuid4()))
    assert refused.value.status == 400
    assert refused.value.details  # which property LINE objected to


@pytest.mark.parametrize("count", [0, 501])
def test_lines_recipient_limit_is_checked_before_sending(
    stack: Stack, client: LineClient, count: int
) -> None:
    recipients = [f"U{i:032x}" for i in range(count)]
    before = api_requests(stack)
    with pytest.raises(ValueError, match="1 to 500 recipients"):
        client.multicast(recipients, [{"type": "text", "text": "x"}], str(uuid.uuid4()))
    assert api_requests(stack) == before  # nothing reached LINE


def api_requests(stack: Stack) -> int:
    stats = requests.get(
        f"{stack.emulator.url}/_emulator/stats", params={"per_user": "false"}, timeout=10
    ).json()
    return int(stats["api_requests_total"])
