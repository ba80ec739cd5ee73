"""The simulator draws the rich menu the emulator keeps for the selected user, and a tap on a
rich menu switch area switches it like LINE does (checked on a recording stand-in bot)."""

from __future__ import annotations

import io

import pytest
from linebot.v3.messaging import (
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

from tests.emulator.browser import open_simulator, screenshot
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
    expect(page.get_by_test_id("postback-note").last).to_contain_text("menu=B")
    assert hook.events[-1]["postback"] == {"data": "menu=B"}
    page.get_by_test_id("rich-menu-area").nth(0).click()
    expect(surface).to_have_attribute("data-rich-menu-id", first)
    screenshot(page, "rich-menu")

    # The bot unlinks the user's menu: the page goes back to the placeholder by itself.
    api.unlink_rich_menu_id_from_user(user_id)
    expect(page.get_by_test_id("rich-menu-placeholder")).to_be_visible()
