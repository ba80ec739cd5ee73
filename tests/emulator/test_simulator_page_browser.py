"""The simulator page speaks the owner's language (the issue of that name): a blocked user's
whole name, a favicon, links in messages that open (and are counted) like LINE's, never HTML
from a message. A recording stand-in bot, no database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from playwright.sync_api import Locator, Page, Response, expect

from bot.emulator.http_server import ServerThread
from tests.emulator.browser import bot_bubbles, open_simulator, screenshot, send, user_bubbles
from tests.emulator.conftest import TOKEN as ACCESS_TOKEN
from tests.emulator.conftest import Emu, stop_in_background

pytestmark = pytest.mark.slow

LONG_NAME = "山田花子テスト用アカウント二号"


def push(emu: Emu, user_id: str, *messages: dict[str, Any]) -> None:
    response = requests.post(
        f"{emu.url}/v2/bot/message/push",
        json={"to": user_id, "messages": list(messages)},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def fully_shown(locator: Locator) -> bool:
    """The element's text is not cut off (no ellipsis, no clipped overflow)."""
    return bool(
        locator.evaluate(
            "e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1"
        )
    )


@pytest.fixture
def emu_with_users(emulator: Emu) -> tuple[Emu, str]:
    """A friend 花子, and a user with a long name who added the account, then blocked it."""
    friend = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(friend)
    blocked = emulator.client.create_user(LONG_NAME)["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    return emulator, str(blocked)


def test_a_blocked_users_whole_name_is_shown(emu_with_users: tuple[Emu, str], page: Page) -> None:
    emulator, blocked_id = emu_with_users
    open_simulator(page, emulator.url, blocked_id)
    for width in (1440, 390):  # the desktop layout and a phone's
        page.set_viewport_size({"width": width, "height": 900})
        item = page.locator(f'[data-testid="user-item"][data-user-id="{blocked_id}"]')
        expect(item).to_have_attribute("data-state", "blocked")
        name = item.locator(".user-name")
        expect(name).to_be_visible()
        expect(name).to_have_text(LONG_NAME)
        assert fully_shown(name), f"the name is cut off at {width}px"
        box, row = name.bounding_box(), item.bounding_box()
        assert box and row and box["x"] + box["width"] <= row["x"] + row["width"]
        expect(item.get_by_test_id("user-state")).to_have_text("ブロック中")
        expect(item.get_by_test_id("user-state")).to_be_visible()
        expect(item.get_by_test_id("unblock-button")).to_be_visible()
        header = page.get_by_test_id("chat-user-name")
        expect(header).to_have_text(f"{LONG_NAME} として会話中(ブロック中)")
        assert fully_shown(header)
        # A friend with a short name, next to it, still reads on one line.
        friend = page.locator('[data-testid="user-item"][data-name="花子"]')
        expect(friend.locator(".user-name")).to_have_text("花子")
    screenshot(page, "blocked-user")


def test_the_page_has_a_favicon(emulator: Emu, page: Page) -> None:
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    open_simulator(page, emulator.url)
    icon = page.locator('link[rel="icon"]')
    expect(icon).to_have_count(1)
    href = icon.evaluate("e => e.href")
    answer = requests.get(href, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
    assert answer.content.lstrip().startswith(b"<svg")
    legacy = requests.get(f"{emulator.url}/favicon.ico", timeout=10)
    assert legacy.status_code == 200
    assert legacy.headers["Content-Type"].startswith("image/svg+xml")
    assert legacy.content == answer.content
    missing = [r.url for r in responses if "favicon" in r.url and r.status >= 400]
    assert missing == []


# --- links in messages ------------------------------------------------------------------------


@dataclass
class LinkServer:
    """A stand-in for the bot's tracked links: `GET /r/<token>` is recorded, then answers a page."""

    url: str = ""
    clicks: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clicked(self) -> list[str]:
        with self.lock:
            return list(self.clicks)


@pytest.fixture
def links() -> Iterator[LinkServer]:
    state = LinkServer()
    app = Flask("tracked-links")

    @app.get("/r/<token>")
    def follow(token: str) -> str:
        with state.lock:
            state.clicks.append(token)
        return "<!doctype html><title>クーポン</title><p>クーポン</p>"

    server = ServerThread(app).start()
    state.url = server.url
    yield state
    stop_in_background(server)


TOKEN = "Q2xpY2sgbWUgYW5kIHRoZSBib3QgY291bnRzIGl0IQ"


def test_links_in_messages_open_and_stay_text(
    emulator: Emu, friend: str, links: LinkServer, page: Page
) -> None:
    tracked = f"{links.url}/r/{TOKEN}"
    host = tracked.split("/")[2]
    text = (
        f"クーポンはこちら\n{tracked}\n"
        '期限は今月末まで。<img src=x onerror="window.__xss = 1"> <b>太字</b>\n'
        "javascript:alert(1) 詳しくは https://example.com/a."
    )
    push(emulator, friend, {"type": "text", "text": text})
    open_simulator(page, emulator.url, friend)
    bubble = bot_bubbles(page).last
    anchors = bubble.get_by_test_id("bubble-link")
    expect(anchors).to_have_count(2)
    link = anchors.nth(0)
    # A long URL is shortened in the text: the host and the start of the rest; the full URL
    # is the target and the tooltip.
    expect(link).to_have_text(f"{host}{f'/r/{TOKEN}'[:16]}…")
    expect(link).to_have_attribute("href", tracked)
    expect(link).to_have_attribute("title", tracked)
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    short = anchors.nth(1)  # a short URL reads whole; the sentence's final dot is not in it
    expect(short).to_have_text("https://example.com/a")
    expect(short).to_have_attribute("href", "https://example.com/a")

    # Message text is never HTML: the tags stay text, nothing runs.
    expect(bubble).to_contain_text('<img src=x onerror="window.__xss = 1"> <b>太字</b>')
    expect(bubble.locator("img, b, script")).to_have_count(0)
    assert page.evaluate("() => window.__xss") is None
    expect(bubble).to_contain_text("javascript:alert(1) 詳しくは")
    expect(page.locator('a[href^="javascript:"]')).to_have_count(0)
    assert bubble.text_content() == text.replace(tracked, link.inner_text())

    # A click really opens the URL (so the bot records it and runs on_click); the chat stays.
    with page.context.expect_page() as opened:
        link.click()
    opened.value.wait_for_url(tracked)
    expect(opened.value.locator("p")).to_have_text("クーポン")
    opened.value.close()
    assert links.clicked() == [TOKEN]
    assert page.url.startswith(f"{emulator.url}/simulator")

    # What the user types links too.
    send(page, f"これ見て {links.url}/r/x")
    expect(user_bubbles(page).last.get_by_test_id("bubble-link")).to_have_attribute(
        "href", f"{links.url}/r/x"
    )
    screenshot(page, "links")


def test_japanese_has_a_bundled_fallback_font(make_emulator: Any, page: Page) -> None:
    """A machine with no CJK font would draw boxes: the page falls back on the Japanese font
    bundled for rich-menu images, served by the emulator, for Japanese characters only."""
    from bot.richmenus.render import bundled_font_path

    emulator = make_emulator(page_font=bundled_font_path())
    served = requests.get(f"{emulator.url}/_emulator/page-font", timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "font/otf"
    open_simulator(page, emulator.url)
    loaded = page.evaluate(
        """async () => (await document.fonts.load('16px "stepline JP"', '性別を教えてください'))
            .map((face) => face.status)"""
    )
    assert loaded == ["loaded"]  # declared, fetched and parsed by the browser
    assert "stepline JP" in page.evaluate("getComputedStyle(document.body).fontFamily")


def test_without_a_page_font_none_is_declared(emulator: Emu, page: Page) -> None:
    assert requests.get(f"{emulator.url}/_emulator/page-font", timeout=10).status_code == 404
    open_simulator(page, emulator.url)
    assert "stepline JP" not in page.evaluate("getComputedStyle(document.body).fontFamily")
