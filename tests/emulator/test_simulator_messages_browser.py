"""The simulator draws every kind of message the bot can send, and each tap sends exactly the
webhook LINE would (checked on a recording stand-in bot, no database)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from bot.clock import SystemClock
from tests.emulator.browser import (
    bot_bubbles,
    chip,
    open_simulator,
    screenshot,
    send,
    user_bubbles,
)
from tests.emulator.conftest import TOKEN, Emu, Hook

pytestmark = pytest.mark.slow

MISSING_IMAGE = "https://example.invalid/salon.jpg"


def push(emu: Emu, user_id: str, *messages: dict[str, Any]) -> None:
    response = requests.post(
        f"{emu.url}/v2/bot/message/push",
        json={"to": user_id, "messages": list(messages)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def buttons_template(link: str) -> dict[str, Any]:
    return {
        "type": "template",
        "altText": "メニュー",
        "template": {
            "type": "buttons",
            "thumbnailImageUrl": MISSING_IMAGE,
            "title": "アロマ60分",
            "text": "6,600円(税込)",
            "actions": [
                {
                    "type": "postback",
                    "label": "予約する",
                    "data": "action=book",
                    "displayText": "予約します",
                },
                {"type": "message", "label": "質問する", "text": "質問があります"},
                {"type": "uri", "label": "詳しく見る", "uri": link},
                {
                    "type": "datetimepicker",
                    "label": "時間を選ぶ",
                    "data": "pick=time",
                    "mode": "time",
                    "initial": "10:00",
                    "min": "09:00",
                    "max": "18:00",
                },
            ],
        },
    }


CONFIRM = {
    "type": "template",
    "altText": "確認",
    "template": {
        "type": "confirm",
        "text": "この内容でよろしいですか?",
        "actions": [
            {"type": "message", "label": "はい", "text": "はい"},
            {"type": "message", "label": "いいえ", "text": "いいえ"},
        ],
    },
}

CAROUSEL = {
    "type": "template",
    "altText": "メニュー一覧",
    "template": {
        "type": "carousel",
        "columns": [
            {
                "title": title,
                "text": "おすすめ",
                "actions": [{"type": "postback", "label": "選ぶ", "data": f"menu={title}"}],
            }
            for title in ("アロマ60分", "アロマ90分", "産後ケア60分")
        ],
    },
}


def flex_bubble(title: str) -> dict[str, Any]:
    return {
        "type": "bubble",
        "hero": {
            "type": "image",
            "url": MISSING_IMAGE,
            "size": "full",
            "aspectRatio": "20:13",
            "aspectMode": "cover",
        },
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "md",
            "contents": [
                {"type": "text", "text": title, "weight": "bold", "size": "xl"},
                {
                    "type": "box",
                    "layout": "baseline",
                    "contents": [
                        {"type": "icon", "url": MISSING_IMAGE},
                        {"type": "text", "text": "4.8", "size": "sm", "color": "#999999"},
                    ],
                },
                {"type": "separator"},
                {
                    "type": "box",
                    "layout": "horizontal",
                    "contents": [
                        {"type": "text", "text": "料金", "color": "#aaaaaa", "flex": 1},
                        {"type": "text", "text": "6,600円", "flex": 2, "align": "end"},
                    ],
                },
                {"type": "filler"},
                {
                    "type": "text",
                    "text": "肩こり・むくみに。\n初回はカウンセリング付きです。",
                    "wrap": True,
                },
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "spacing": "sm",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {
                        "type": "postback",
                        "label": "この内容で予約",
                        "data": f"flex={title}",
                        "displayText": f"{title}を予約",
                    },
                },
                {
                    "type": "button",
                    "style": "secondary",
                    "action": {
                        "type": "datetimepicker",
                        "label": "日時を選ぶ",
                        "data": "pick=datetime",
                        "mode": "datetime",
                    },
                },
            ],
        },
    }


def quick(text: str, label: str) -> dict[str, Any]:
    return {
        "type": "text",
        "text": text,
        "quickReply": {
            "items": [
                {"type": "action", "action": {"type": "message", "label": label, "text": label}}
            ]
        },
    }


def last_event(hook: Hook) -> dict[str, Any]:
    return hook.events[-1]


def test_messages_render_and_taps_send_what_line_sends(
    emulator: Emu, hook: Hook, page: Page
) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    link = f"{emulator.url}/simulator?from=link"
    push(
        emulator,
        user_id,
        {"type": "text", "text": "こんにちは\n2行目です"},
        {"type": "image", "originalContentUrl": MISSING_IMAGE, "previewImageUrl": MISSING_IMAGE},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        buttons_template(link),
        CONFIRM,
    )
    flex_carousel = {
        "type": "carousel",
        "contents": [flex_bubble("アロマ90分"), flex_bubble("産後ケア")],
    }
    push(
        emulator,
        user_id,
        CAROUSEL,
        {"type": "flex", "altText": "アロマ60分", "contents": flex_bubble("アロマ60分")},
        {"type": "flex", "altText": "メニュー", "contents": flex_carousel},
        quick("古い選択肢", "古い"),
        quick("どれにしますか?", "新しい"),
    )
    open_simulator(page, emulator.url, user_id)
    expect(bot_bubbles(page)).to_have_count(10)

    text = bot_bubbles(page).first
    assert text.text_content() == "こんにちは\n2行目です"
    assert text.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    expect(page.locator('[data-testid="bubble"][data-type="image"] .img-missing')).to_have_count(1)
    expect(page.locator('[data-testid="bubble"][data-type="sticker"]')).to_contain_text("スタンプ")

    # Only the last message's quick replies are shown.
    expect(page.get_by_test_id("quick-reply")).to_have_count(1)
    chip(page, "新しい").click()
    expect(user_bubbles(page).last).to_have_text("新しい")
    assert last_event(hook)["message"]["text"] == "新しい"
    expect(page.get_by_test_id("quick-replies")).to_be_hidden()

    # Template buttons: postback (with displayText), message, uri, time picker.
    actions = page.get_by_test_id("template-action")
    actions.filter(has_text="予約する").click()
    expect(user_bubbles(page).last).to_have_text("予約します")
    assert last_event(hook)["postback"] == {"data": "action=book"}
    actions.filter(has_text="質問する").click()
    expect(user_bubbles(page).last).to_have_text("質問があります")
    assert last_event(hook)["message"]["text"] == "質問があります"
    events_before = len(hook.events)
    with page.context.expect_page() as opened:
        actions.filter(has_text="詳しく見る").click()
    opened.value.wait_for_url(link)
    opened.value.close()
    assert len(hook.events) == events_before  # a link sends nothing

    actions.filter(has_text="時間を選ぶ").click()
    picker = page.get_by_test_id("datetime-input")
    expect(picker).to_have_attribute("type", "time")
    expect(picker).to_have_value("10:00")
    expect(picker).to_have_attribute("min", "09:00")
    expect(picker).to_have_attribute("max", "18:00")
    picker.fill("13:30")
    page.get_by_test_id("datetime-submit").click()
    expect(page.get_by_test_id("postback-note").last).to_have_text("13:30 を選択しました")
    assert last_event(hook)["postback"] == {"data": "pick=time", "params": {"time": "13:30"}}

    actions.filter(has_text="はい").click()
    expect(user_bubbles(page).last).to_have_text("はい")

    # The carousel scrolls sideways; its columns' buttons work.
    carousel = page.locator('[data-testid="bubble"][data-template="carousel"]')
    assert carousel.evaluate("e => e.scrollWidth > e.clientWidth")
    carousel.get_by_test_id("template-action").nth(2).click()
    # No displayText: LINE shows nothing; the page notes the button's label, never the data.
    expect(page.get_by_test_id("postback-note").last).to_have_text("(「選ぶ」をタップ)")
    assert last_event(hook)["postback"] == {"data": "menu=産後ケア60分"}
    expect(page.get_by_test_id("chat")).not_to_contain_text("menu=")

    # Flex: layout and buttons.
    bubble = page.get_by_test_id("flex-bubble").first
    price_label = bubble.get_by_text("料金", exact=True)
    price = bubble.get_by_text("6,600円", exact=True)
    label_box, price_box = price_label.bounding_box(), price.bounding_box()
    assert label_box and price_box
    assert abs(label_box["y"] - price_box["y"]) < 2 and price_box["x"] > label_box["x"]
    wrapped = bubble.get_by_text("肩こり・むくみに。", exact=False)
    assert wrapped.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    expect(page.get_by_test_id("flex-carousel").get_by_test_id("flex-bubble")).to_have_count(2)
    bubble.get_by_test_id("flex-action").filter(has_text="この内容で予約").click()
    expect(user_bubbles(page).last).to_have_text("アロマ60分を予約")
    assert last_event(hook)["postback"] == {"data": "flex=アロマ60分"}
    bubble.get_by_test_id("flex-action").filter(has_text="日時を選ぶ").click()
    expect(picker).to_have_attribute("type", "datetime-local")
    expect(picker).to_have_value("2026-11-23T10:00")  # no `initial`: now on the emulator's clock
    picker.fill("2026-12-05T19:30")
    page.get_by_test_id("datetime-submit").click()
    expect(page.get_by_test_id("postback-note").last).to_have_text(
        "2026-12-05T19:30 を選択しました"
    )
    assert last_event(hook)["postback"] == {
        "data": "pick=datetime",
        "params": {"datetime": "2026-12-05T19:30"},
    }

    bubble.scroll_into_view_if_needed()
    screenshot(page, "messages-flex")
    page.get_by_test_id("chat").evaluate("e => { e.scrollTop = 0; }")
    screenshot(page, "messages-top")
    page.get_by_test_id("bubble").filter(
        has_text="この内容でよろしいですか?"
    ).scroll_into_view_if_needed()
    screenshot(page, "messages-templates")

    # The bot answering non-200 shows an error in the chat and a toast.
    hook.status = 500
    send(page, "エラーになる?")
    expect(page.get_by_test_id("error-note")).to_contain_text("HTTP 500")
    expect(page.get_by_test_id("toast")).to_be_visible()


def test_follow_block_and_unblock_from_the_user_list(emulator: Emu, hook: Hook, page: Page) -> None:
    open_simulator(page, emulator.url)
    page.get_by_test_id("create-user-name").fill("太郎")
    page.get_by_test_id("create-user-submit").click()
    item = page.get_by_test_id("user-item").filter(has_text="太郎")
    expect(item.get_by_test_id("user-state")).to_have_text("未追加")
    expect(page.get_by_test_id("message-input")).to_be_disabled()
    page.get_by_test_id("chat-follow-button").click()  # the call to action in the chat
    expect(item.get_by_test_id("user-state")).to_have_text("友だち")
    expect(page.get_by_test_id("message-input")).to_be_enabled()
    item.get_by_test_id("block-button").click()
    expect(item.get_by_test_id("user-state")).to_have_text("ブロック中")
    expect(page.get_by_test_id("message-input")).to_be_disabled()
    item.get_by_test_id("unblock-button").click()
    expect(item.get_by_test_id("user-state")).to_have_text("友だち")
    expect(page.get_by_test_id("system-note")).to_have_text(
        ["友だち追加しました", "ブロックしました", "ブロックを解除しました"]
    )
    assert [e["type"] for e in hook.events] == ["follow", "unfollow", "follow"]
    assert hook.events[-1]["follow"] == {"isUnblocked": True}
    # No bot admin API is configured here: the side panel says so instead of failing.
    expect(page.get_by_test_id("friend-status")).to_contain_text("未設定")


def test_the_time_machine_is_off_on_the_real_clock(
    make_emulator: Callable[..., Emu], page: Page
) -> None:
    emu = make_emulator(clock=SystemClock())
    open_simulator(page, emu.url)
    for testid in ("clock-plus-hour", "clock-plus-day", "clock-to-input", "clock-to-submit"):
        expect(page.get_by_test_id(testid)).to_be_disabled()
    expect(page.get_by_test_id("clock-note")).to_be_visible()
    expect(page.get_by_test_id("clock-display")).to_contain_text("(Asia/Tokyo)")


def test_a_drawn_rich_menu_taps_like_line(emulator: Emu, hook: Hook, page: Page) -> None:
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    open_simulator(page, emulator.url, user_id)
    expect(page.get_by_test_id("rich-menu-placeholder")).to_have_text("リッチメニュー (未設定)")
    menu = {
        "imageUrl": MISSING_IMAGE,
        "size": {"width": 2500, "height": 843},
        "chatBarText": "メニュー",
        "areas": [
            {
                "bounds": {"x": 0, "y": 0, "width": 1250, "height": 843},
                "action": {"type": "postback", "data": "booking", "displayText": "予約したい"},
            },
            {
                "bounds": {"x": 1250, "y": 0, "width": 1250, "height": 843},
                "action": {"type": "message", "text": "営業時間"},
            },
        ],
    }
    page.evaluate("menu => window.stepline.showRichMenu(menu)", menu)
    areas = page.get_by_test_id("rich-menu-area")
    expect(areas).to_have_count(2)
    first, second = areas.nth(0).bounding_box(), areas.nth(1).bounding_box()
    assert first and second and abs(first["width"] - second["width"]) < 1
    assert second["x"] >= first["x"] + first["width"] - 1
    areas.nth(0).click()
    expect(user_bubbles(page).last).to_have_text("予約したい")
    assert hook.events[-1]["postback"] == {"data": "booking"}
    areas.nth(1).click()
    expect(user_bubbles(page).last).to_have_text("営業時間")
    assert hook.events[-1]["message"]["text"] == "営業時間"
