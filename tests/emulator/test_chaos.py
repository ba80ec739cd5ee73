"""Probabilistic fault injection (`/_emulator/chaos`), through the official SDK over real HTTP."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import requests
import urllib3
from linebot.v3.messaging import (
    ApiException,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    TextMessage,
)

from bot.emulator.chaos import Chaos, ChaosError, ChaosSettings
from bot.emulator.client import EmulatorError
from tests.emulator.conftest import TOKEN, Emu

PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"


def push(api: MessagingApi, to: str, text: str, key: str | None = None) -> Any:
    request = PushMessageRequest(to=to, messages=[TextMessage(text=text)])
    return api.push_message_with_http_info(request, x_line_retry_key=key)


def outcome(call: Callable[[], Any]) -> str:
    """What the client saw: "200", "500", "429", ... or "dropped" (a connection error)."""
    try:
        return str(call().status_code)
    except ApiException as exc:
        return str(exc.status)
    except urllib3.exceptions.HTTPError:
        return "dropped"


def received(emulator: Emu, user_id: str) -> list[str]:
    return [m["message"]["text"] for m in emulator.client.messages(user_id)["messages"]]


# --- each kind at rate 1.0 ---------------------------------------------------------------------


def test_5xx_answers_500_and_does_nothing(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos({"5xx": 1.0})
    key = str(uuid.uuid4())
    with pytest.raises(ApiException) as caught:
        push(api, friend, "hi", key)
    assert caught.value.status == 500
    assert json.loads(caught.value.body) == {"message": "Internal server error"}
    assert received(emulator, friend) == []
    assert emulator.client.accepted() == []
    emulator.client.clear_chaos()
    assert push(api, friend, "hi", key).status_code == 200  # the key was not consumed
    assert received(emulator, friend) == ["hi"]


def test_429_with_retry_after_does_nothing(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos({"429": 1.0}, retry_after=2)
    with pytest.raises(ApiException) as caught:
        push(api, friend, "hi")
    assert caught.value.status == 429
    assert json.loads(caught.value.body) == {"message": "Too Many Requests"}
    assert caught.value.headers is not None
    assert caught.value.headers.get("Retry-After") == "2"
    assert received(emulator, friend) == []
    assert emulator.client.stats()["billable_total"] == 0


def test_429_without_retry_after_has_no_header(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_chaos({"429": 1.0})
    with pytest.raises(ApiException) as caught:
        push(api, friend, "hi")
    assert caught.value.headers is not None
    assert caught.value.headers.get("Retry-After") is None


def test_accept_then_drop_delivers_then_the_client_sees_a_connection_error(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_chaos({"accept_then_drop": 1.0})
    key = str(uuid.uuid4())
    with pytest.raises(urllib3.exceptions.ProtocolError) as caught:  # not an ApiException
        push(api, friend, "once", key)
    assert "Remote end closed connection without response" in str(caught.value)
    # The work was done: delivered, billable, accepted, the key consumed.
    assert received(emulator, friend) == ["once"]
    stats = emulator.client.stats()
    assert stats["billable_total"] == 1
    assert stats["responses_dropped_total"] == 1
    (accepted,) = emulator.client.accepted(path=PUSH)
    assert accepted["retry_key"] == key
    assert accepted["response_status"] is None and accepted["response_dropped"] is True
    # The retry with the same key (chaos off now) is a 409 naming the first request.
    emulator.client.clear_chaos()
    with pytest.raises(ApiException) as retried:
        push(api, friend, "once", key)
    assert retried.value.status == 409
    assert retried.value.headers is not None
    assert retried.value.headers.get("x-line-accepted-request-id") == accepted["request_id"]
    assert received(emulator, friend) == ["once"]
    # The request log marks the dropped response.
    log = [
        (r["status"], r.get("chaos"), r.get("response_dropped")) for r in emulator.client.requests()
    ]
    assert log == [(200, "accept_then_drop", True), (409, None, None)]


def test_accept_then_drop_seen_by_requests_as_connection_error(emulator: Emu, friend: str) -> None:
    emulator.client.set_chaos({"accept_then_drop": 1.0})
    body = {"to": [friend], "messages": [{"type": "text", "text": "all"}]}
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{emulator.url}{MULTICAST}",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
    assert received(emulator, friend) == ["all"]
    assert emulator.client.chaos()["counters"]["injected"]["accept_then_drop"] == {MULTICAST: 1}


def test_accept_then_drop_on_multicast_retry_is_409(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    other = emulator.client.create_user("次郎")["user_id"]
    emulator.client.follow(other)
    emulator.client.set_chaos({"accept_then_drop": 1.0}, paths=[MULTICAST])
    key = str(uuid.uuid4())
    request = MulticastRequest(to=[friend, other], messages=[TextMessage(text="news")])
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.multicast_with_http_info(request, x_line_retry_key=key)
    emulator.client.clear_chaos()
    with pytest.raises(ApiException) as retried:
        api.multicast_with_http_info(request, x_line_retry_key=key)
    assert retried.value.status == 409
    assert emulator.client.delivery_counts() == {friend: {"news": 1}, other: {"news": 1}}


def test_latency_delays_api_calls_only(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos(latency_ms={"min": 120, "max": 120})
    started = time.monotonic()
    assert push(api, friend, "slow").status_code == 200
    assert time.monotonic() - started >= 0.12
    started = time.monotonic()
    counters = emulator.client.chaos()["counters"]  # the control API is never delayed
    assert time.monotonic() - started < 0.1
    assert counters["latency_ms_total"] == 120
    assert counters["requests"] == {PUSH: 1}
    assert counters["injected_total"] == {"5xx": 0, "429": 0, "accept_then_drop": 0}


def test_only_the_listed_paths(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos({"5xx": 1.0}, paths=[MULTICAST])
    assert push(api, friend, "fine").status_code == 200
    assert api.get_profile(friend).user_id == friend
    with pytest.raises(ApiException) as caught:
        api.multicast(MulticastRequest(to=[friend], messages=[TextMessage(text="x")]))
    assert caught.value.status == 500
    emulator.client.set_chaos({"5xx": 1.0}, paths=["/v2/bot/message/*"])  # fnmatch patterns
    assert outcome(lambda: push(api, friend, "x")) == "500"
    assert api.get_profile(friend).user_id == friend


def test_status_5xx_can_be_chosen(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos({"5xx": 1.0}, status_5xx=503)
    assert outcome(lambda: push(api, friend, "x")) == "503"


def test_scripted_faults_still_win_for_their_call(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_chaos({"429": 1.0})
    emulator.client.add_fault(path=PUSH, status=503)
    assert outcome(lambda: push(api, friend, "a")) == "503"
    assert outcome(lambda: push(api, friend, "b")) == "429"
    assert emulator.client.chaos()["counters"]["injected_total"]["429"] == 1


def test_get_put_delete(emulator: Emu, api: MessagingApi, friend: str) -> None:
    assert emulator.client.chaos() == {
        "enabled": False,
        "settings": None,
        "counters": {
            "requests_total": 0,
            "requests": {},
            "injected_total": {"5xx": 0, "429": 0, "accept_then_drop": 0},
            "injected": {"5xx": {}, "429": {}, "accept_then_drop": {}},
            "latency_ms_total": 0.0,
        },
    }
    shown = emulator.client.set_chaos(
        {"5xx": 0.05, "accept_then_drop": 0.05, "429": 0.02},
        retry_after=1,
        latency_ms={"min": 0, "max": 20},
        paths=[PUSH, MULTICAST],
        seed=42,
    )
    assert shown["enabled"] is True
    assert shown["settings"] == {
        "rates": {"5xx": 0.05, "429": 0.02, "accept_then_drop": 0.05},
        "retry_after": 1,
        "latency_ms": {"min": 0, "max": 20},
        "paths": [PUSH, MULTICAST],
        "seed": 42,
        "status_5xx": 500,
    }
    emulator.client.set_chaos({"5xx": 1.0})
    outcome(lambda: push(api, friend, "x"))
    outcome(lambda: push(api, friend, "y"))
    final = emulator.client.clear_chaos()
    assert final["enabled"] is False
    assert final["final_counters"]["injected"]["5xx"] == {PUSH: 2}
    assert push(api, friend, "z").status_code == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"rates": {"5xx": 1.5}}, "between 0 and 1"),
        ({"rates": {"5xx": 0.6, "429": 0.6}}, "more than 1"),
        ({"rates": {"timeout": 0.1}}, "unknown fault kind"),
        ({"rates": {"5xx": "x"}}, "must be a number"),
        ({"latency_ms": {"min": 20, "max": 10}}, "min <= max"),
        ({"paths": ["v2/bot"]}, "'paths'"),
        ({"seed": "x"}, "'seed'"),
        ({"retry_after": -1}, "'retry_after'"),
        ({"status_5xx": 404}, "'status_5xx'"),
        ({"rate": {}}, "unknown chaos setting"),
    ],
)
def test_bad_settings_are_400(emulator: Emu, body: dict[str, Any], error: str) -> None:
    response = requests.put(f"{emulator.url}/_emulator/chaos", json=body, timeout=5)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert emulator.client.chaos()["enabled"] is False


# --- rates and determinism ---------------------------------------------------------------------


RATES = {"5xx": 0.05, "accept_then_drop": 0.05, "429": 0.02}


def within(observed: int, n: int, p: float) -> bool:
    """Within 4 standard deviations of the binomial mean (seeded, so never flaky)."""
    return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


def test_rates_over_1000_seeded_calls(emulator: Emu, api: MessagingApi, friend: str) -> None:
    emulator.client.set_chaos(RATES, seed=42)
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(count: int) -> None:
        for i in range(count):
            result = outcome(partial(push, api, friend, f"m{i}", str(uuid.uuid4())))
            with lock:
                seen[result] += 1

    threads = [threading.Thread(target=worker, args=(250,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(seen.values()) == 1000
    assert set(seen) <= {"200", "500", "429", "dropped"}
    counters = emulator.client.chaos()["counters"]
    injected = counters["injected_total"]
    assert counters["requests_total"] == 1000
    # What the clients saw is exactly what the emulator says it injected.
    assert injected == {"5xx": seen["500"], "429": seen["429"], "accept_then_drop": seen["dropped"]}
    for kind, rate in RATES.items():
        assert within(injected[kind], 1000, rate), (kind, injected)
    # Dropped responses were accepted and delivered; 5xx and 429 were not.
    stats = emulator.client.stats(per_user=False)
    assert stats["accepted_requests_total"] == seen["200"] + seen["dropped"]
    assert stats["responses_dropped_total"] == seen["dropped"]
    assert stats["billable_total"] == seen["200"] + seen["dropped"]


def test_the_same_seed_gives_the_same_sequence(
    emulator: Emu, api: MessagingApi, friend: str
) -> None:
    emulator.client.set_chaos({"5xx": 0.3, "429": 0.2, "accept_then_drop": 0.2}, seed=7)

    def run() -> list[str]:
        return [outcome(lambda: push(api, friend, "x")) for _ in range(40)]

    first = run()
    emulator.client.reset()  # re-seeds; the settings stay (users go: add the friend again)
    emulator.client.create_user("花子", user_id=friend)
    emulator.client.follow(friend)
    assert emulator.client.chaos()["enabled"] is True
    assert emulator.client.chaos()["counters"]["requests_total"] == 0
    assert run() == first
    assert len(set(first)) == 4
    emulator.client.set_chaos({"5xx": 0.3, "429": 0.2, "accept_then_drop": 0.2}, seed=8)
    assert run() != first


def test_chaos_class_rates_and_seed() -> None:
    lock = threading.RLock()
    settings = ChaosSettings.from_json({"rates": RATES, "seed": 1})
    chaos = Chaos(lock, settings)

    def draws(of: Chaos) -> list[str | None]:
        return [d.kind if (d := of.decide(PUSH)) else "off" for _ in range(20_000)]

    kinds = draws(chaos)
    counts = Counter(kinds)
    for kind, rate in RATES.items():
        assert within(counts[kind], 20_000, rate), counts
    again = Chaos(lock, settings)
    assert draws(again) == kinds
    assert Chaos(lock, None).decide(PUSH) is None
    only_push = Chaos(lock, ChaosSettings.from_json({"rates": {"5xx": 1}, "paths": [PUSH]}))
    assert only_push.decide(MULTICAST) is None
    with pytest.raises(ChaosError):
        ChaosSettings.from_json([])


def test_client_raises_on_bad_settings(emulator: Emu) -> None:
    with pytest.raises(EmulatorError) as caught:
        emulator.client.set_chaos({"5xx": 2})
    assert caught.value.status == 400
