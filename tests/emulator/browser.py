"""Driving Debian's Chromium with Playwright (no browser download) for the simulator tests."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.conftest import ROOT, need

CHROMIUM = Path(os.environ.get("STEPLINE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "simulator.png"
VIEWPORT: ViewportSize = {"width": 1440, "height": 960}
BROWSER_TIMEOUT_MS = 10_000
# Resources the page cannot load on purpose (placeholder images) are not script errors.
IGNORED_CONSOLE = ("Failed to load resource",)


def chromium_path() -> str:
    if not CHROMIUM.exists():
        need(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return str(CHROMIUM)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Headless Chromium on a fresh profile of its own, closed (and the profile removed) after."""
    executable = chromium_path()
    with tempfile.TemporaryDirectory(prefix="stepline-chromium-") as profile:
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(
                executable_path=executable,
                args=[*CHROMIUM_ARGS, f"--disk-cache-dir={profile}/cache"],
                env={**os.environ, "HOME": profile, "XDG_CONFIG_HOME": profile},
            )
            try:
                yield browser
            finally:
                browser.close()
        finally:
            playwright.stop()


class PageErrors:
    """Script errors and console errors of a page, so a test can assert there were none."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(IGNORED_CONSOLE):
            self.messages.append(f"console: {message.text}")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"simulator-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- page helpers -----------------------------------------------------------------------------


def open_simulator(page: Page, base_url: str, user_id: str | None = None) -> None:
    """Open the page (on `user_id`'s chat) and wait until its first refresh has run."""
    page.goto(base_url + "/" + (f"simulator#{user_id}" if user_id else ""))
    expect(page.locator("body[data-ready=true]")).to_have_count(1)


def bot_bubbles(page: Page) -> Locator:
    return page.locator('[data-testid="bubble"][data-from="bot"]')


def user_bubbles(page: Page) -> Locator:
    return page.locator('[data-testid="bubble"][data-from="user"]')


def chip(page: Page, label: str) -> Locator:
    """The quick-reply chip labelled exactly `label`."""
    return page.get_by_test_id("quick-reply").filter(has_text=re.compile(f"^{re.escape(label)}$"))


def send(page: Page, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send-button").click()
