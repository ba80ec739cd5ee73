"""The simulator draws the rich menu the emulator keeps for the selected user, and a tap on a
rich menu switch area switches it like LINE does (checked on a recording stand-in bot)."""

from __future__ import annotations

import io
import re

import pytest
from linebot.v3.messaging import (
    Action,
    CreateRichMenuAliasRequest,
    MessagingApi,
    MessagingApiBlob,
    PostbackAction,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
    RichMenuSwitchAction,
)
from PIL import Image
from playwright.sync_api import Page, expect

from tests.emulator.browser import open_simulator, screenshot, user_bubbles
from tests.emulator.conftest import Emu, Hook

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 2500, 843


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), color).save(out, "PNG")
    return out.getvalue()


def tab_menu(api: MessagingApi, blob: MessagingApiBlob, name: str, other: str) -> str:
    """A menu whose left half switches to alias `other` and right half posts back `name`."""
    half = WIDTH // 2
    request = RichMenuRequest(
        size=RichMenuSize(width=WIDTH, height=HEIGHT),
        selected=True,
        name=name,
        chat_bar_text=f"タブ{name}",
        areas=[
            RichMenuArea(
                bounds=RichMenuBounds(x=0, y=0, width=half, height=HEIGHT),
                action=RichMenuSwitchAction(rich_menu_alias_id=other, data=f"switch={other}"),
            ),
            RichMenuArea(
                bounds=RichMenuBounds(x=half, y=0, width=WIDTH - half, height=HEIGHT),
                action=PostbackAction(data=f"menu={name}"),
            ),
        ],
    )
    menu_id = str(api.create_rich_menu(request).rich_menu_id)
    color = (6, 199, 85) if name == "A" else (40, 90, 200)
    blob.set_rich_menu_image(menu_id, png(color), _headers={"Content-Type": "image/png"})
    return menu_id


def test_the_users_rich_menu_is_drawn_and_switches(
    emulator: Emu, api: MessagingApi, hook: Hook, page: Page
) -> None:
    blob = MessagingApiBlob(api.api_client)
    first = tab_menu(api, blob, "A", "tab-b")
    second = tab_menu(api, blob, "B", "tab-a")
    for alias_id, menu_id in (("tab-a", first), ("tab-b", second)):
        api.create_rich_menu_alias(
            CreateRichMenuAliasRequest(rich_menu_alias_id=alias_id, rich_menu_id=menu_id)
        )
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    api.link_rich_menu_id_to_user(user_id, first)

    open_simulator(page, emulator.url, user_id)
    surface = page.get_by_test_id("rich-menu-image")
    expect(surface).to_have_attribute("data-rich-menu-id", first)
    expect(surface).to_have_attribute("data-source", "user")
    expect(page.get_by_test_id("rich-menu-bar")).to_have_text("タブA")
    background = surface.evaluate("node => node.style.backgroundImage")
    assert f"/_emulator/richmenus/{first}/image" in background
    loaded = page.evaluate(
        """async url => {
             const response = await fetch(url);
             return [response.status, response.headers.get("content-type")];
           }""",
        f"/_emulator/richmenus/{first}/image",
    )
    assert loaded == [200, "image/png"]
    areas = page.get_by_test_id("rich-menu-area")
    expect(areas).to_have_count(2)
    expect(areas.nth(0)).to_have_attribute("data-action-type", "richmenuswitch")

    areas.nth(0).click()
    expect(surface).to_have_attribute("data-rich-menu-id", second)
    expect(surface).to_have_attribute("data-source", "switched")
    expect(page.get_by_test_id("rich-menu-bar")).to_have_text("タブB")
    assert hook.events[-1]["postback"] == {
        "data": "switch=tab-b",
        "params": {"newRichMenuAliasId": "tab-b", "status": "SUCCESS"},
    }
    expect(page.get_by_test_id("postback-note").last).to_contain_text("tab-b")

    # The new menu's own areas work: a postback, then a switch back.
    page.get_by_test_id("rich-menu-area").nth(1).click()
    # A postback without displayText or label: a neutral note, never the data.
    expect(page.get_by_test_id("postback-note").last).to_have_text("(メニューをタップ)")
    assert hook.events[-1]["postback"] == {"data": "menu=B"}
    page.get_by_test_id("rich-menu-area").nth(0).click()
    expect(surface).to_have_attribute("data-rich-menu-id", first)
    screenshot(page, "rich-menu")

    # The bot unlinks the user's menu: the page goes back to the placeholder by itself.
    api.unlink_rich_menu_id_from_user(user_id)
    expect(page.get_by_test_id("rich-menu-placeholder")).to_be_visible()


def tabbed_menu(api: MessagingApi, blob: MessagingApiBlob, name: str, *actions: Action) -> str:
    """A menu whose top row is the two tabs (はじめての方 → alias guest, 会員メニュー → alias
    member) and whose bottom row is one area per action, side by side."""
    tabs = [
        RichMenuArea(
            bounds=RichMenuBounds(x=0, y=0, width=WIDTH // 2, height=HEIGHT // 3),
            action=RichMenuSwitchAction(
                label="はじめての方", rich_menu_alias_id="guest", data="rm1|tab|guest"
            ),
        ),
        RichMenuArea(
            bounds=RichMenuBounds(x=WIDTH // 2, y=0, width=WIDTH // 2, height=HEIGHT // 3),
            action=RichMenuSwitchAction(
                label="会員メニュー", rich_menu_alias_id="member", data="rm1|tab|member"
            ),
        ),
    ]
    width = WIDTH // len(actions)
    below = [
        RichMenuArea(
            bounds=RichMenuBounds(
                x=index * width, y=HEIGHT // 3, width=width, height=HEIGHT - HEIGHT // 3
            ),
            action=action,
        )
        for index, action in enumerate(actions)
    ]
    request = RichMenuRequest(
        size=RichMenuSize(width=WIDTH, height=HEIGHT),
        selected=True,
        name=name,
        chat_bar_text=name,
        areas=[*tabs, *below],
    )
    menu_id = str(api.create_rich_menu(request).rich_menu_id)
    blob.set_rich_menu_image(menu_id, png((6, 199, 85)), _headers={"Content-Type": "image/png"})
    return menu_id


def test_the_tab_of_the_menu_shown_is_marked_and_taps_show_labels_not_data(
    emulator: Emu, api: MessagingApi, hook: Hook, page: Page
) -> None:
    """The issue "The simulator speaks the owner's language": a tap on an area whose postback
    has no displayText shows the area's label (or a neutral note), never the internal data;
    the tab of the menu shown looks selected."""
    blob = MessagingApiBlob(api.api_client)
    guest = tabbed_menu(
        api,
        blob,
        "はじめての方",
        PostbackAction(label="アンケート", data="rm1|guest|2|5a1c0e77"),
    )
    member = tabbed_menu(
        api,
        blob,
        "会員メニュー",
        PostbackAction(label="ポイント", data="rm1|member|4|b438ef10"),
        PostbackAction(data="rm1|member|5|c0ffee00"),
        PostbackAction(label="ご予約", data="booking", display_text="予約したい"),
    )
    for alias_id, menu_id in (("guest", guest), ("member", member)):
        api.create_rich_menu_alias(
            CreateRichMenuAliasRequest(rich_menu_alias_id=alias_id, rich_menu_id=menu_id)
        )
    user_id = emulator.client.create_user("花子")["user_id"]
    emulator.client.follow(user_id)
    api.link_rich_menu_id_to_user(user_id, member)

    open_simulator(page, emulator.url, user_id)
    surface = page.get_by_test_id("rich-menu-image")
    expect(surface).to_have_attribute("data-rich-menu-id", member)
    areas = page.get_by_test_id("rich-menu-area")
    guest_tab, member_tab = areas.nth(0), areas.nth(1)
    expect(member_tab).to_have_attribute("aria-current", "true")
    expect(member_tab).to_have_attribute("data-current", "true")
    expect(member_tab).to_have_class(re.compile(r"\brich-menu-area-current\b"))
    expect(guest_tab).not_to_have_attribute("aria-current", "true")
    expect(guest_tab).to_have_attribute("data-current", "false")
    # The mark is visible: the current tab is drawn differently from the other one.
    shadow = "e => getComputedStyle(e).boxShadow"
    assert member_tab.evaluate(shadow) != "none"
    assert guest_tab.evaluate(shadow) == "none"
    expect(areas.nth(2)).not_to_have_attribute("data-current", re.compile(".*"))

    areas.nth(2).click()  # ポイント: a postback without displayText
    notes = page.get_by_test_id("postback-note")
    expect(notes.last).to_have_text("(メニュー「ポイント」をタップ)")
    assert hook.events[-1]["postback"] == {"data": "rm1|member|4|b438ef10"}
    areas.nth(3).click()  # no label, no displayText
    expect(notes.last).to_have_text("(メニューをタップ)")
    assert hook.events[-1]["postback"] == {"data": "rm1|member|5|c0ffee00"}
    areas.nth(4).click()  # with displayText: the user's bubble, as before
    expect(user_bubbles(page).last).to_have_text("予約したい")

    guest_tab.click()
    expect(surface).to_have_attribute("data-rich-menu-id", guest)
    expect(notes.last).to_have_text("(メニューを「はじめての方」に切り替えました)")
    areas = page.get_by_test_id("rich-menu-area")
    expect(areas.nth(0)).to_have_attribute("aria-current", "true")
    expect(areas.nth(1)).to_have_attribute("data-current", "false")
    expect(areas.nth(1)).not_to_have_attribute("aria-current", "true")

    # A tap from another client (the terminal chat, a test's LineUser) names no label: the
    # emulator finds it on the user's menu. The timeline keeps the labels across a reload.
    emulator.client.postback(user_id, "rm1|guest|2|5a1c0e77")
    page.reload()
    expect(page.locator("body[data-ready=true]")).to_have_count(1)
    expect(page.get_by_test_id("postback-note")).to_have_text(
        [
            "(メニュー「ポイント」をタップ)",
            "(メニューをタップ)",
            "(メニューを「はじめての方」に切り替えました)",
            "(メニュー「アンケート」をタップ)",
        ]
    )
    expect(page.get_by_test_id("chat")).not_to_contain_text("rm1|")
    assert [e["postback"]["data"] for e in hook.events if e["type"] == "postback"] == [
        "rm1|member|4|b438ef10",
        "rm1|member|5|c0ffee00",
        "booking",
        "rm1|tab|guest",
        "rm1|guest|2|5a1c0e77",
    ]
    screenshot(page, "rich-menu-tabs")
