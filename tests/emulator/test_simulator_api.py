"""The simulator's endpoints: the page, the clock (time machine), the timeline, the bot proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask, jsonify, request

from bot.clock import FrozenClock, OffsetClock, SystemClock
from bot.emulator.http_server import ServerThread
from tests.emulator.conftest import TOKEN, Emu, Hook, stop_in_background

START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # the FrozenClock default: 10:00 in Tokyo


def post_clock(emu: Emu, body: Any) -> requests.Response:
    return requests.post(f"{emu.url}/_emulator/clock", json=body, timeout=10)


def push(emu: Emu, user_id: str, *messages: dict[str, Any]) -> None:
    response = requests.post(
        f"{emu.url}/v2/bot/message/push",
        json={"to": user_id, "messages": list(messages)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


# --- the page ---------------------------------------------------------------------------------


def test_root_redirects_to_the_page_which_loads_its_own_assets(emulator: Emu) -> None:
    root = requests.get(emulator.url + "/", allow_redirects=False, timeout=10)
    assert root.status_code == 302
    assert root.headers["Location"].endswith("/simulator")
    page = requests.get(emulator.url + "/simulator", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for testid in ("create-user-form", "chat", "message-input", "rich-menu", "clock-display"):
        assert f'data-testid="{testid}"' in html
    assert "http://" not in html.replace(emulator.url, "") and "https://" not in html  # no CDN
    for asset in ("simulator.js", "simulator.css", "messages.css"):
        assert f"/simulator/static/{asset}" in html
    modules = ["simulator", "api", "dom", "messages", "flex", "panel", "richmenu", "timemachine"]
    for name in modules:
        script = requests.get(f"{emulator.url}/simulator/static/{name}.js", timeout=10)
        assert script.status_code == 200, name
        assert "javascript" in script.headers["Content-Type"]
        assert "https://" not in script.text and "http://" not in script.text  # no CDN


# --- the clock --------------------------------------------------------------------------------


def test_clock_reads_in_the_account_time_zone(emulator: Emu) -> None:
    body = requests.get(f"{emulator.url}/_emulator/clock", timeout=10).json()
    assert body == {
        "now": "2026-11-23T01:00:00Z",
        "local": "2026-11-23T10:00",
        "timezone": "Asia/Tokyo",
        "utc_offset": "+09:00",
        "movable": True,
    }


@pytest.mark.parametrize(
    ("advance", "expected"),
    [
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        (7200, timedelta(hours=2)),
        (0.5, timedelta(seconds=0.5)),
    ],
)
def test_clock_advances(
    emulator: Emu, clock: FrozenClock, advance: object, expected: timedelta
) -> None:
    response = post_clock(emulator, {"advance": advance})
    assert response.status_code == 200, response.text
    assert clock.now() == START + expected
    body = response.json()
    assert body["moved_seconds"] == expected.total_seconds()
    assert body["on_clock_change"] == "none"
    assert body["now"] == (START + expected).isoformat().replace("+00:00", "Z")


def test_clock_jumps_to_an_account_time(emulator: Emu, clock: FrozenClock) -> None:
    response = post_clock(emulator, {"to": "2026-12-01T10:00"})
    assert response.status_code == 200, response.text
    assert clock.now() == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert response.json()["local"] == "2026-12-01T10:00"
    # An explicit offset is taken as given.
    assert post_clock(emulator, {"to": "2026-12-02T00:00:00Z"}).status_code == 200
    assert clock.now() == datetime(2026, 12, 2, tzinfo=UTC)


def test_clock_uses_the_configured_time_zone(
    make_emulator: Callable[..., Emu], clock: FrozenClock
) -> None:
    emu = make_emulator(account_timezone="America/New_York")
    assert post_clock(emu, {"to": "2026-11-23T08:00"}).json()["local"] == "2026-11-23T08:00"
    assert clock.now() == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        {"to": "2026-11-23T09:59"},  # a minute before now (10:00 in Tokyo)
        {"advance": "-1h"},
        {"advance": -60},
        {"advance": 0},
    ],
)
def test_clock_never_moves_backwards(emulator: Emu, clock: FrozenClock, body: object) -> None:
    response = post_clock(emulator, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert clock.now() == START


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"advance": "1h", "to": "2026-12-01T10:00"},
        {"advance": "soon"},
        {"advance": True},
        {"advance": "100000d"},
        {"to": "next tuesday"},
        {"to": 1764550800},
    ],
)
def test_clock_rejects_a_bad_body(emulator: Emu, clock: FrozenClock, body: object) -> None:
    response = post_clock(emulator, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert clock.now() == START


def test_the_real_clock_cannot_move(make_emulator: Callable[..., Emu]) -> None:
    emu = make_emulator(clock=SystemClock())
    assert requests.get(f"{emu.url}/_emulator/clock", timeout=10).json()["movable"] is False
    response = post_clock(emu, {"advance": "1h"})
    assert response.status_code == 409
    assert "real clock" in response.json()["error"]


def test_an_offset_clock_jumps_by_the_difference(make_emulator: Callable[..., Emu]) -> None:
    offset = OffsetClock()
    emu = make_emulator(clock=offset)
    target = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    local = target.astimezone(ZoneInfo("Asia/Tokyo"))
    response = post_clock(emu, {"to": local.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 200, response.text
    assert abs(offset.now() - target) < timedelta(seconds=5)


def test_moving_the_clock_runs_the_hook_and_reports_its_failure(
    make_emulator: Callable[..., Emu], clock: FrozenClock
) -> None:
    seen: list[datetime] = []
    emu = make_emulator(on_clock_change=lambda: seen.append(clock.now()))
    body = post_clock(emu, {"advance": "1d"}).json()
    assert body["on_clock_change"] == "ok"
    assert seen == [START + timedelta(days=1)]

    def broken() -> None:
        raise RuntimeError("sweep failed")

    emu.config.on_clock_change = broken
    response = post_clock(emu, {"advance": "1h"})
    assert response.status_code == 200  # the clock did move
    assert response.json()["on_clock_change"] == "failed"
    assert response.json()["on_clock_change_error"] == "RuntimeError: sweep failed"
    assert clock.now() == START + timedelta(days=1, hours=1)


# --- the timeline -----------------------------------------------------------------------------


def test_timeline_interleaves_what_the_user_did_and_received(
    emulator: Emu, hook: Hook, clock: FrozenClock
) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    push(emulator, user_id, {"type": "text", "text": "ようこそ"})
    clock.advance(timedelta(minutes=5))
    emulator.client.text(user_id, "こんにちは")
    emulator.client.postback(user_id, "sl1|welcome|gender|0", "女性")
    emulator.client.postback(user_id, "pick", params={"date": "2026-12-05"})
    sticker = {"type": "sticker", "packageId": "446", "stickerId": "1988"}
    push(emulator, user_id, {"type": "text", "text": "ありがとう"}, sticker)
    emulator.client.unfollow(user_id)

    url = f"{emulator.url}/_emulator/users/{user_id}/timeline"
    body = requests.get(url, timeout=10).json()
    items = body["items"]
    assert [(i["from"], i.get("type") or i["message"]["type"]) for i in items] == [
        ("user", "follow"),
        ("bot", "text"),
        ("user", "text"),
        ("user", "postback"),
        ("user", "postback"),
        ("bot", "text"),
        ("bot", "sticker"),
        ("user", "unfollow"),
    ]
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
    assert body["last_seq"] == items[-1]["seq"]
    follow, welcome, text, tapped, picked = items[:5]
    assert follow["isUnblocked"] is False and follow["status"] == 200 and follow["done"] is True
    assert welcome["via"] == "push" and welcome["billable"] is True
    assert welcome["at_local"] == "2026-11-23 10:00"
    assert text["text"] == "こんにちは" and text["at_local"] == "2026-11-23 10:05"
    assert tapped["data"] == "sl1|welcome|gender|0" and tapped["displayText"] == "女性"
    assert picked["displayText"] is None and picked["params"] == {"date": "2026-12-05"}
    assert len(hook.events) == 5  # follow, text, 2 postbacks, unfollow: displayText is not sent

    # Polling from the last seq returns only what came after it, then nothing.
    later = requests.get(url, params={"since": items[4]["seq"]}, timeout=10).json()
    assert [i["seq"] for i in later["items"]] == [i["seq"] for i in items[5:]]
    empty = requests.get(url, params={"since": body["last_seq"]}, timeout=10).json()
    assert empty == {"items": [], "last_seq": body["last_seq"]}


def test_timeline_records_the_bots_error(emulator: Emu, hook: Hook) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    hook.status = 500
    emulator.client.follow(user_id)
    item = requests.get(f"{emulator.url}/_emulator/users/{user_id}/timeline", timeout=10).json()
    assert item["items"][0]["status"] == 500


def test_timeline_of_an_unknown_user_or_bad_since(emulator: Emu) -> None:
    unknown = requests.get(f"{emulator.url}/_emulator/users/Unope/timeline", timeout=10)
    assert unknown.status_code == 404
    user_id = emulator.client.create_user("花子")["user_id"]
    bad = requests.get(
        f"{emulator.url}/_emulator/users/{user_id}/timeline", params={"since": "x"}, timeout=10
    )
    assert bad.status_code == 400


# --- the bot proxy ----------------------------------------------------------------------------


@pytest.fixture
def fake_bot() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in bot: the admin API's friend endpoint (bearer `admin`) and `/healthz`."""
    app = Flask("fake-bot")
    seen: list[dict[str, str]] = []

    @app.get("/api/v1/friends/<user_id>")
    def friend(user_id: str) -> Any:
        seen.append({"auth": request.headers.get("Authorization", ""), "user": user_id})
        if request.headers.get("Authorization") != "Bearer admin":
            return jsonify({"error": "missing or wrong bearer token"}), 401
        if user_id == "Uknown":
            return jsonify({"line_user_id": user_id, "tags": ["女性"], "conversation": None})
        return jsonify({"error": f"no friend with LINE user id {user_id!r}"}), 404

    @app.get("/healthz")
    def healthz() -> Any:
        problems = ["flows/x.yaml:3:5: unknown key 'foo'"]
        return jsonify({"ok": True, "catalogue": "loaded", "catalogue_problems": problems})

    server = ServerThread(app).start()
    yield server.url, seen
    stop_in_background(server)


def test_friend_proxy_passes_the_bots_answer_through(
    make_emulator: Callable[..., Emu], fake_bot: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = fake_bot
    emu = make_emulator(bot_api_url=url + "/", bot_admin_token="admin")
    found = requests.get(f"{emu.url}/_emulator/bot/friends/Uknown", timeout=10)
    assert found.status_code == 200
    assert found.json()["tags"] == ["女性"]
    assert seen == [{"auth": "Bearer admin", "user": "Uknown"}]
    missing = requests.get(f"{emu.url}/_emulator/bot/friends/Uother", timeout=10)
    assert missing.status_code == 404
    assert "no friend" in missing.json()["error"]

    emu.config.bot_admin_token = "wrong"
    refused = requests.get(f"{emu.url}/_emulator/bot/friends/Uknown", timeout=10)
    assert refused.status_code == 502
    assert "401" in refused.json()["error"]


def test_health_proxy_passes_catalogue_problems_through(
    make_emulator: Callable[..., Emu], fake_bot: tuple[str, list[dict[str, str]]]
) -> None:
    emu = make_emulator(bot_api_url=fake_bot[0])
    response = requests.get(f"{emu.url}/_emulator/bot/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["catalogue_problems"] == ["flows/x.yaml:3:5: unknown key 'foo'"]


def test_proxies_answer_503_when_not_configured(emulator: Emu) -> None:
    for path in ("/_emulator/bot/friends/U1", "/_emulator/bot/health"):
        response = requests.get(emulator.url + path, timeout=10)
        assert response.status_code == 503
        assert response.json()["configured"] is False
        assert "not configured" in response.json()["error"]


def test_proxies_answer_503_when_the_bot_is_unreachable(
    make_emulator: Callable[..., Emu],
) -> None:
    emu = make_emulator(bot_api_url="http://127.0.0.1:9", bot_admin_token="admin")
    for path in ("/_emulator/bot/friends/U1", "/_emulator/bot/health"):
        response = requests.get(emu.url + path, timeout=10)
        assert response.status_code == 503
        assert response.json()["configured"] is True
        assert "cannot be reached" in response.json()["error"]
