"""Fixtures: an emulator and a recording "bot" on real HTTP servers, the official SDK on top."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, request
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi
from playwright.sync_api import Browser, Page

from bot.clock import FrozenClock
from bot.emulator.app import create_emulator_app
from bot.emulator.client import EmulatorClient
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from bot.line.signature import is_valid
from tests.emulator.browser import BROWSER_TIMEOUT_MS, VIEWPORT, PageErrors, launch_chromium

SECRET = "test-channel-secret"
TOKEN = "test-channel-access-token"


def stop_in_background(server: ServerThread) -> None:
    """`ServerThread.stop()` waits for its accept loop (polled every 50 ms) to notice; let
    that happen off the test's clock (each test has its own servers on fresh ports, so
    nothing waits for the old ones)."""
    threading.Thread(target=server.stop, name=f"stop:{server.port}", daemon=True).start()


@dataclass
class Received:
    body: dict[str, Any]
    raw: bytes
    signature: str | None
    signature_valid: bool


@dataclass
class Hook:
    """A stand-in bot: records every webhook, checks its signature, answers `status`, and
    runs `handler(body)` (e.g. replying through the SDK) before answering."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    status: int = 200
    handler: Callable[[dict[str, Any]], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for body in self.bodies for event in body["events"]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()
    app = Flask("recording-bot")

    @app.post("/callback")
    def callback() -> tuple[str, int]:
        raw = request.get_data()
        signature = request.headers.get("X-Line-Signature")
        body = request.get_json(force=True)
        with state.lock:
            state.received.append(Received(body, raw, signature, is_valid(SECRET, raw, signature)))
        if state.handler is not None:
            state.handler(body)
        return "OK", state.status

    server = ServerThread(app).start()
    state.url = server.url + "/callback"
    yield state
    stop_in_background(server)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@dataclass
class Emu:
    url: str
    client: EmulatorClient
    config: EmulatorConfig


@pytest.fixture
def make_emulator(hook: Hook, clock: FrozenClock) -> Iterator[Callable[..., Emu]]:
    servers: list[ServerThread] = []

    def make(**overrides: Any) -> Emu:
        settings: dict[str, Any] = {
            "channel_secret": SECRET,
            "channel_access_token": TOKEN,
            "webhook_url": hook.url,
            "clock": clock,
            **overrides,
        }
        config = EmulatorConfig(**settings)
        server = ServerThread(create_emulator_app(config)).start()
        servers.append(server)
        return Emu(server.url, EmulatorClient(server.url), config)

    yield make
    for server in servers:
        stop_in_background(server)


@pytest.fixture
def emulator(make_emulator: Callable[..., Emu]) -> Emu:
    return make_emulator()


@pytest.fixture
def api_client(emulator: Emu) -> Iterator[ApiClient]:
    with ApiClient(Configuration(host=emulator.url, access_token=TOKEN)) as client:
        yield client


@pytest.fixture
def api(api_client: ApiClient) -> MessagingApi:
    return MessagingApi(api_client)


@pytest.fixture
def friend(emulator: Emu) -> str:
    """A user who has added the account as a friend."""
    user = emulator.client.create_user("花子")
    emulator.client.follow(user["user_id"])
    return str(user["user_id"])


# --- the browser (simulator tests) ------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright, once per session (skips without it;
    fails under CI=true)."""
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (cookies, storage) per test; fails the test on script errors."""
    context = browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    opened = context.new_page()
    errors = PageErrors(opened)
    yield opened
    context.close()
    assert errors.messages == [], errors.messages
