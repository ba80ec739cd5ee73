"""Rate limits per endpoint (`/_emulator/rate_limits`): LINE's documented table, token buckets
on real time (the emulator's clock is frozen here), through the official SDK over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import click
import pytest
import requests
from linebot.v3.messaging import (
    ApiException,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    TextMessage,
)

from bot.cli.emulator import parse_chaos_option, parse_rate_limits_option
from bot.emulator.ratelimits import (
    LINE_RATE_LIMITS,
    RATE_LIMITED,
    SOURCE,
    Limit,
    RateLimiter,
    RateLimitError,
)
from tests.emulator.conftest import Emu

PUSH = "POST /v2/bot/message/push"


def push(api: MessagingApi, to: str, text: str, key: str | None = None) -> int:
    request = PushMessageRequest(to=to, messages=[TextMessage(text=text)])
    try:
        return int(api.push_message_with_http_info(request, x_line_retry_key=key).status_code)
    except ApiException as exc:
        if exc.status == 429:
            assert json.loads(exc.body) == {"message": RATE_LIMITED}
        return int(exc.status)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- over HTTP ---------------------------------------------------------------------------------


def test_off_by_default_with_lines_table(emulator: Emu, api: MessagingApi, friend: str) -> None:
    shown = emulator.client.rate_limits()
    assert shown["enabled"] is False
    assert (
        shown["source"]
        == SOURCE
        == "https://developers.line.biz/en/reference/messaging-api/#rate-limits"
    )
    assert shown["limits"]["POST /v2/bot/message/narrowcast"] == "60/h"
    assert shown["limits"]["POST /v2/bot/richmenu"] == "100/h"
    assert shown["limits"]["*"] == "2000/s"
    assert RATE_LIMITED == "The API rate limit has been exceeded. Try again later."
    assert all(push(api, friend, f"{i}") == 200 for i in range(30))


def test_429_beyond_the_limit_then_recovers(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_rate_limits(limits={PUSH: 20})  # 20 per second, a burst of 20
    started = time.monotonic()
    statuses = [push(api, friend, f"{i}") for i in range(40)]
    elapsed = time.monotonic() - started
    assert set(statuses) == {200, 429}
    accepted = statuses.count(200)
    assert 20 <= accepted <= 20 + int(elapsed * 20) + 1, (accepted, elapsed)
    assert statuses[:20] == [200] * 20
    assert len(emulator.client.messages(friend)["messages"]) == accepted  # 429s did nothing
    shown = emulator.client.rate_limits()["endpoints"][PUSH]
    assert shown["limit"] == "20/s"
    assert (shown["allowed"], shown["limited"]) == (accepted, 40 - accepted)
    # Other endpoints have their own buckets (LINE's 2,000/s).
    multicast = MulticastRequest(to=[friend], messages=[TextMessage(text="m")])
    assert api.multicast_with_http_info(multicast).status_code == 200
    time.sleep(0.15)  # 3 tokens back
    assert push(api, friend, "again") == 200
    time.sleep(1.0)  # the bucket is full again
    assert [push(api, friend, f"b{i}") for i in range(20)] == [200] * 20


def test_a_limited_request_does_not_consume_its_retry_key(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_rate_limits(limits={"/v2/bot/message/push": "4/s"})  # any method
    assert [push(api, friend, f"{i}") for i in range(4)] == [200] * 4
    key = str(uuid.uuid4())
    assert push(api, friend, "late", key) == 429
    time.sleep(0.3)
    assert push(api, friend, "late", key) == 200
    texts = [m["message"]["text"] for m in emulator.client.messages(friend)["messages"]]
    assert texts == ["0", "1", "2", "3", "late"]


def test_paths_with_ids_share_their_endpoint(emulator: Emu, api: MessagingApi, friend: str) -> None:
    other = emulator.client.create_user("次郎")["user_id"]
    emulator.client.follow(other)
    emulator.client.set_rate_limits(limits={"GET /v2/bot/profile/{userId}": 2})
    api.get_profile(friend)
    api.get_profile(other)
    with pytest.raises(ApiException) as caught:
        api.get_profile(friend)
    assert caught.value.status == 429
    endpoints = emulator.client.rate_limits()["endpoints"]
    assert endpoints["GET /v2/bot/profile/{userId}"]["limited"] == 1


def test_unlimited_and_other_overrides(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_rate_limits(limits={"*": 1, PUSH: None})
    assert all(push(api, friend, f"{i}") == 200 for i in range(5))  # unlimited
    api.get_profile(friend)
    with pytest.raises(ApiException) as caught:
        api.get_profile(friend)
    assert caught.value.status == 429
    assert api.get_bot_info().user_id  # its own bucket under "*"


def test_delete_switches_off_and_reset_refills(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_rate_limits(limits={PUSH: "1/h"})
    assert push(api, friend, "a") == 200
    assert push(api, friend, "b") == 429
    emulator.client.reset()  # buckets refill; the settings stay
    emulator.client.create_user("花子", user_id=friend)
    emulator.client.follow(friend)
    assert emulator.client.rate_limits()["enabled"] is True
    assert push(api, friend, "c") == 200
    assert push(api, friend, "d") == 429
    assert emulator.client.disable_rate_limits()["enabled"] is False
    assert push(api, friend, "e") == 200


def test_control_api_is_never_limited(emulator: Emu) -> None:
    emulator.client.set_rate_limits(limits={"*": 1})
    for _ in range(5):
        emulator.client.stats()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"limits": {PUSH: "20/day"}}, "unknown unit"),
        ({"limits": {PUSH: 0}}, "at least one"),
        ({"limits": {PUSH: "fast"}}, "requests per second"),
        ({"limits": {"FETCH /v2/x": 1}}, "unknown HTTP method"),
        ({"limits": {"v2/bot": 1}}, "METHOD /path"),
        ({"limits": [1]}, "'limits'"),
        ({"enabled": "yes"}, "'enabled'"),
        ({"rate": 1}, "unknown rate-limit setting"),
    ],
)
def test_bad_settings_are_400(emulator: Emu, body: dict[str, Any], error: str) -> None:
    response = requests.put(f"{emulator.url}/_emulator/rate_limits", json=body, timeout=5)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert emulator.client.rate_limits()["enabled"] is False


def test_configured_from_the_start(make_emulator: Any) -> None:
    emu = make_emulator(rate_limits={"enabled": True, "limits": None}, chaos={"seed": 3})
    shown = emu.client.rate_limits()
    assert shown["enabled"] is True and shown["overrides"] == {}
    assert emu.client.chaos()["settings"]["seed"] == 3


# --- the limiter itself (fake monotonic time) --------------------------------------------------


def test_token_bucket_burst_then_refill_rate() -> None:
    clock = FakeTime()
    limiter = RateLimiter(enabled=True, now=clock)
    narrowcast = ("POST", "/v2/bot/message/narrowcast")
    assert all(limiter.allow(*narrowcast) for _ in range(60))  # 60/h: a burst of 60
    assert not limiter.allow(*narrowcast)
    clock.now += 59
    assert not limiter.allow(*narrowcast)
    clock.now += 1  # one token a minute
    assert limiter.allow(*narrowcast)
    assert not limiter.allow(*narrowcast)
    clock.now += 3600 * 5  # never more than the bucket holds
    assert sum(limiter.allow(*narrowcast) for _ in range(100)) == 60


def test_other_endpoints_2000_per_second_each() -> None:
    clock = FakeTime()
    limiter = RateLimiter(enabled=True, now=clock)
    assert sum(limiter.allow("POST", "/v2/bot/message/push") for _ in range(2100)) == 2000
    assert sum(limiter.allow("POST", "/v2/bot/message/reply") for _ in range(2100)) == 2000
    clock.now += 0.5
    assert sum(limiter.allow("POST", "/v2/bot/message/push") for _ in range(2100)) == 1000


def test_multicast_200_per_second() -> None:
    clock = FakeTime()
    limiter = RateLimiter(enabled=True, now=clock)
    assert sum(limiter.allow("POST", "/v2/bot/message/multicast") for _ in range(300)) == 200
    clock.now += 0.5
    assert sum(limiter.allow("POST", "/v2/bot/message/multicast") for _ in range(300)) == 100


def test_disabled_allows_everything() -> None:
    limiter = RateLimiter(enabled=False, limits={"*": 1}, now=FakeTime())
    assert all(limiter.allow("POST", "/v2/bot/message/push") for _ in range(10))


@pytest.mark.parametrize(
    ("method", "path", "key", "limit"),
    [
        ("POST", "/v2/bot/message/push", "POST /v2/bot/message/push", "2000/s"),
        ("POST", "/v2/bot/message/broadcast", "POST /v2/bot/message/broadcast", "60/h"),
        ("DELETE", "/v2/bot/richmenu/rm-1", "DELETE /v2/bot/richmenu/{richMenuId}", "100/h"),
        ("GET", "/v2/bot/richmenu/rm-1", "GET /v2/bot/richmenu/rm-1", "2000/s"),
        (
            "DELETE",
            "/v2/bot/richmenu/alias/a",
            "DELETE /v2/bot/richmenu/alias/{richMenuAliasId}",
            "100/h",
        ),
        ("POST", "/v2/bot/richmenu/batch", "POST /v2/bot/richmenu/batch", "3/h"),
        ("GET", "/v2/bot/audienceGroup/list", "GET /v2/bot/audienceGroup/list", "60/min"),
        (
            "GET",
            "/v2/bot/audienceGroup/42",
            "GET /v2/bot/audienceGroup/{audienceGroupId}",
            "60/min",
        ),
        (
            "PUT",
            "/v2/bot/channel/webhook/endpoint",
            "PUT /v2/bot/channel/webhook/endpoint",
            "1000/min",
        ),
        ("POST", "/v2/bot/chat/loading/start", "POST /v2/bot/chat/loading/start", "100/s"),
        ("GET", "/v2/bot/membership/list", "GET /v2/bot/membership/list", "200/s"),
        ("POST", "/v2/oauth/accessToken", "POST /v2/oauth/accessToken", "370/s"),
    ],
)
def test_endpoints_of_lines_table(method: str, path: str, key: str, limit: str) -> None:
    found_key, found = RateLimiter(enabled=True).endpoint(method, path)
    assert (found_key, found.text() if found else None) == (key, limit)


def test_route_template_names_unlisted_endpoints() -> None:
    key, limit = RateLimiter().endpoint("GET", "/v2/bot/profile/Uabc", "/v2/bot/profile/{user_id}")
    assert (key, limit) == ("GET /v2/bot/profile/{user_id}", Limit(2000, 1.0))


def test_every_default_parses() -> None:
    for key, value in LINE_RATE_LIMITS.items():
        assert Limit.parse(value, key) is not None
    assert Limit.parse("60/min") == Limit(60, 60.0)
    assert Limit.parse(5) == Limit(5, 1.0)
    assert Limit.parse(None) is None
    with pytest.raises(RateLimitError):
        Limit.parse(True)


# --- CLI options -------------------------------------------------------------------------------


def test_cli_option_parsing(tmp_path: Any) -> None:
    assert parse_rate_limits_option("off") is None
    assert parse_rate_limits_option("default") == {"enabled": True, "limits": None}
    assert parse_rate_limits_option('{"POST /v2/bot/message/push": "20/s"}') == {
        "enabled": True,
        "limits": {"POST /v2/bot/message/push": "20/s"},
    }
    with pytest.raises(click.BadParameter):
        parse_rate_limits_option("fast")
    with pytest.raises(click.BadParameter):
        parse_rate_limits_option('{"POST /x": "1/day"}')
    assert parse_chaos_option(None) is None
    assert parse_chaos_option('{"rates": {"5xx": 0.05}, "seed": 1}') == {
        "rates": {"5xx": 0.05},
        "seed": 1,
    }
    settings = tmp_path / "chaos.json"
    settings.write_text('{"rates": {"429": 0.02}, "retry_after": 1}')
    assert parse_chaos_option(f"@{settings}") == {"rates": {"429": 0.02}, "retry_after": 1}
    with pytest.raises(click.BadParameter):
        parse_chaos_option('{"rates": {"5xx": 3}}')
