"""The web chat simulator in a real browser (Playwright driving Debian's headless Chromium)
against the whole stack: the emulator, the bot and the example flows.

Only the SQLite database is used (`database_url` is parametrized to it): the browser tests are
about the page; the engine's PostgreSQL path is covered by tests/bot.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from bot.clock import FrozenClock
from bot.services.richmenu_sync import RichMenuSync
from storage.db import Database
from tests.conftest import EXAMPLE_FLOWS
from tests.emulator.browser import (
    DOCS_SCREENSHOT,
    bot_bubbles,
    chip,
    open_simulator,
    screenshot,
    send,
    user_bubbles,
)
from tests.support import Stack, start_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def stack(db: Database, clock: FrozenClock) -> Iterator[Stack]:
    started = start_stack(db, clock, EXAMPLE_FLOWS)
    yield started
    started.stop()


def create_and_follow(page: Page, name: str) -> Locator:
    page.get_by_test_id("create-user-name").fill(name)
    page.get_by_test_id("create-user-submit").click()
    item = page.get_by_test_id("user-item").filter(has_text=name)
    expect(item).to_have_attribute("data-state", "new")
    expect(item).to_have_class(re.compile(r"\bselected\b"))
    item.get_by_test_id("follow-button").click()
    expect(item).to_have_attribute("data-state", "friend")
    return item


def field(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="friend-field"][data-field="{name}"] dd')


def test_welcome_questionnaire_in_the_browser(stack: Stack, page: Page) -> None:
    open_simulator(page, stack.emulator.url)
    expect(page.get_by_test_id("rich-menu-placeholder")).to_have_text("リッチメニュー (未設定)")
    create_and_follow(page, "花子")

    expect(bot_bubbles(page).last).to_have_text("花子さん、性別を教えてください")
    expect(page.get_by_test_id("friend-flow-name")).to_have_text("welcome")
    expect(page.get_by_test_id("friend-flow-state")).to_have_text("gender")
    chip(page, "女性").click()
    expect(bot_bubbles(page).last).to_have_text("年齢を数字で教えてください")
    expect(page.get_by_test_id("quick-reply")).to_have_count(0)
    send(page, "42")
    expect(bot_bubbles(page).last).to_have_text("気になることは?")
    chip(page, "産後ケア").click()
    expect(bot_bubbles(page).last).to_have_text("更年期のお悩みはありますか?")
    chip(page, "はい").click()
    expect(bot_bubbles(page).last).to_have_text("ありがとうございました!")

    # The user's side: typed text, and the displayText of the quick replies they tapped.
    expect(user_bubbles(page)).to_have_text(["女性", "42", "産後ケア", "はい"])
    expect(bot_bubbles(page)).to_have_count(5)
    expect(page.get_by_test_id("quick-replies")).to_be_hidden()

    # The side panel: the friend as the bot sees it.
    tags = page.get_by_test_id("friend-tag")
    expect(tags).to_have_count(5)
    assert set(tags.all_inner_texts()) == {"女性", "40代", "産後ケア", "更年期", "回答済み"}
    # Fields as the owner wrote them: the field's label, and 女性 for the stored `female`.
    expect(field(page, "gender")).to_have_text("女性")
    expect(page.locator('[data-testid="friend-field"][data-field="gender"] dt')).to_have_text(
        "性別"
    )
    expect(field(page, "age")).to_have_text("42")
    expect(page.get_by_test_id("friend-flow")).to_have_text("なし")
    # The completed questionnaire enrolled the friend in the welcome steps: the next one shows
    # with its moment (the demo's worker would send it at once; this stack runs none).
    step = page.get_by_test_id("friend-step")
    expect(step).to_have_count(1)
    expect(step).to_contain_text("はじめてのステップ配信 1通目 / 3")
    expect(step.get_by_test_id("friend-step-due")).to_have_text("11/23 10:00")
    outbox = page.get_by_test_id("outbox-item")
    expect(outbox).to_have_count(5)
    for item in outbox.all():
        expect(item).to_have_attribute("data-billing", "free")
        expect(item.get_by_test_id("outbox-via")).to_have_text("返信(無料)")
    expect(page.get_by_test_id("billable-count")).to_have_attribute("data-count", "0")
    expect(page.get_by_test_id("problems-banner")).to_be_hidden()

    screenshot(page, "welcome")


def test_the_readme_picture_is_the_demo_as_a_new_user_meets_it(
    db: Database, clock: FrozenClock, page: Page
) -> None:
    """What `python3 run.py demo` shows after the questionnaire: the salon's name, its
    rich menu on the member tab, the panel with labels and the waiting step. With
    `STEPLINE_DOCS_SCREENSHOT=1` it also refreshes docs/images/simulator.png (on request only:
    a machine without Japanese fonts would draw boxes)."""
    stack = start_stack(db, clock, EXAMPLE_FLOWS, account_name="アロマサロン そよかぜ")
    try:
        runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
        runner.apply(runner.plan())
        open_simulator(page, stack.emulator.url)
        create_and_follow(page, "花子")
        expect(page.get_by_test_id("account-name")).to_have_text("アロマサロン そよかぜ")
        chip(page, "女性").click()
        expect(bot_bubbles(page).last).to_have_text("年齢を数字で教えてください")
        send(page, "35")
        chip(page, "腰痛").click()
        expect(bot_bubbles(page).last).to_have_text("ありがとうございました!")
        expect(page.get_by_test_id("rich-menu-bar")).to_have_text("会員メニュー")
        expect(page.get_by_test_id("rich-menu-area").nth(1)).to_have_attribute(
            "aria-current", "true"
        )
        expect(field(page, "gender")).to_have_text("女性")
        expect(page.get_by_test_id("friend-step")).to_have_count(1)
        if os.environ.get("STEPLINE_DOCS_SCREENSHOT") == "1":
            DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.mouse.move(0, 0)
            page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
    finally:
        stack.stop()


def test_booking_with_the_date_picker(stack: Stack, page: Page) -> None:
    user = stack.user("さくら")  # answered the questionnaire before the page opens
    user.follow()
    user.tap("男性")
    user.say("35")
    open_simulator(page, stack.emulator.url, user.user_id)
    expect(bot_bubbles(page).last).to_have_text("ありがとうございました!")
    # LineUser.tap sends no displayText: LINE shows nothing for that postback, the page a note.
    expect(user_bubbles(page)).to_have_text(["35"])

    send(page, "予約")
    expect(bot_bubbles(page).last).to_have_text("ご希望のメニューをお選びください")
    chip(page, "アロマ90分").click()
    expect(bot_bubbles(page).last).to_have_text("ご希望の日付をお選びください")
    chip(page, "日付を選ぶ").click()
    picker = page.get_by_test_id("datetime-input")
    expect(picker).to_be_visible()
    expect(picker).to_have_attribute("type", "date")
    expect(picker).to_have_value("2026-11-23")  # no `initial`: today on the emulator's clock
    picker.fill("2026-12-05")
    page.get_by_test_id("datetime-submit").click()
    expect(bot_bubbles(page).last).to_have_text("ご連絡先のお電話番号を教えてください")
    expect(page.get_by_test_id("postback-note").last).to_have_text("2026-12-05 を選択しました")
    send(page, "090-1234-5678")
    confirm = bot_bubbles(page).last
    expect(confirm).to_contain_text("この内容で予約しますか?")
    assert (
        confirm.text_content()
        == "アロマ90分 / 2026年12月5日 / 09012345678\nこの内容で予約しますか?"
    )
    chip(page, "予約する").click()
    expect(bot_bubbles(page).last).to_have_text("ご予約を承りました。確認のご連絡をいたします。")

    expect(field(page, "preferred_date")).to_have_text("2026-12-05")
    expect(field(page, "menu")).to_have_text("アロマ90分")
    expect(field(page, "phone")).to_have_text("09012345678")
    expect(page.get_by_test_id("friend-tag").filter(has_text="予約申込")).to_have_count(1)
    expect(page.get_by_test_id("friend-flow")).to_have_text("なし")
    screenshot(page, "booking")


def test_time_machine_times_out_the_questionnaire(stack: Stack, page: Page) -> None:
    open_simulator(page, stack.emulator.url)
    clock = page.get_by_test_id("clock-display")
    expect(clock).to_have_text("2026-11-23 10:00 (Asia/Tokyo)")
    create_and_follow(page, "次郎")
    expect(bot_bubbles(page).last).to_have_text("次郎さん、性別を教えてください")
    expect(page.get_by_test_id("friend-flow-name")).to_have_text("welcome")
    expect(page.get_by_test_id("friend-flow-state")).to_have_text("gender")

    page.get_by_test_id("clock-plus-hour").click()
    expect(clock).to_have_text("2026-11-23 11:00 (Asia/Tokyo)")
    expect(page.get_by_test_id("friend-flow-name")).to_have_text("welcome")

    page.get_by_test_id("clock-plus-day").click()  # past the welcome flow's 24h timeout
    expect(clock).to_have_text("2026-11-24 11:00 (Asia/Tokyo)")
    expect(page.get_by_test_id("friend-flow")).to_have_text("なし")

    jump = page.get_by_test_id("clock-to-input")
    jump.fill("2026-12-01T09:30")
    page.get_by_test_id("clock-to-submit").click()
    expect(clock).to_have_text("2026-12-01 09:30 (Asia/Tokyo)")
    send(page, "こんにちは")  # the clock's time is what the chat shows
    expect(page.get_by_test_id("date-chip").last).to_have_text("2026/12/01(火)")
    screenshot(page, "time-machine")


def test_catalogue_problems_show_a_banner(
    db: Database, clock: FrozenClock, page: Page, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(EXAMPLE_FLOWS, flows)
    stack = start_stack(db, clock, flows)
    try:
        open_simulator(page, stack.emulator.url)
        expect(page.get_by_test_id("problems-banner")).to_be_hidden()
        (flows / "broken.yaml").write_text(
            "flow: broken\nsteps:\n  - ask: q\n    text: どうしますか?\n    choices: 3\n",
            encoding="utf-8",
        )
        answer = stack.api("POST", "/flows/reload")
        assert answer.status_code == 422, answer.text
        page.reload()
        banner = page.get_by_test_id("problems-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("直前の正しい定義のまま動いています")
        problem = page.get_by_test_id("problem").first
        expect(problem).to_have_text(re.compile(r"broken\.yaml:\d+:\d+: \S"))
        screenshot(page, "problems")
    finally:
        stack.stop()


def test_tapping_the_rich_menu_starts_flows_and_switches_tabs(stack: Stack, page: Page) -> None:
    """The salon's two-tab menu: 会員メニュー after the questionnaire, はじめての方 before."""
    runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
    runner.apply(runner.plan())
    user = stack.user("ゆり")
    user.follow()
    user.tap("女性")
    user.say("35")
    user.tap("腰痛")  # the questionnaire is done: tagged 回答済み, so the member menu is linked
    open_simulator(page, stack.emulator.url, user.user_id)
    surface = page.get_by_test_id("rich-menu-image")
    expect(surface).to_have_attribute("data-source", "user")
    expect(page.get_by_test_id("rich-menu-bar")).to_have_text("会員メニュー")
    areas = page.get_by_test_id("rich-menu-area")
    expect(areas).to_have_count(7)
    expect(areas.nth(1)).to_have_attribute("aria-current", "true")  # the 会員メニュー tab
    expect(areas.nth(0)).to_have_attribute("data-current", "false")

    areas.nth(4).click()  # ポイント: the bot's own postback data, no displayText
    expect(page.get_by_test_id("postback-note").last).to_have_text("(メニュー「ポイント」をタップ)")
    expect(bot_bubbles(page).last).to_contain_text("現在のポイントは")
    expect(page.get_by_test_id("chat")).not_to_contain_text("rm1|")

    areas.nth(2).click()  # ご予約: a postback that starts the booking flow
    expect(bot_bubbles(page).last).to_have_text("ご希望のメニューをお選びください")
    expect(page.get_by_test_id("friend-flow-name")).to_have_text("booking")

    areas.nth(0).click()  # the はじめての方 tab: LINE switches to the guest menu's alias
    expect(surface).to_have_attribute("data-source", "switched")
    expect(page.get_by_test_id("rich-menu-bar")).to_have_text("メニュー")
    expect(page.get_by_test_id("rich-menu-area").nth(0)).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("rich-menu-area").nth(1)).to_have_attribute("data-current", "false")
    expect(page.get_by_test_id("postback-note").last).to_have_text(
        "(メニューを「はじめての方」に切り替えました)"
    )
    page.get_by_test_id("rich-menu-area").nth(2).click()  # アンケートに答える
    expect(bot_bubbles(page).last).to_have_text("ゆりさん、性別を教えてください")
    expect(page.get_by_test_id("friend-flow-name")).to_have_text("welcome")
    screenshot(page, "rich-menu")
