"""Rich menus in the control and inspection API (on `inspection.bp`, under `/_emulator/`; no
auth, like the rest of it): what a user sees, a tap on a rich menu switch action, everything
the channel has, and the images for the simulator page.

`GET /_emulator/users/<user_id>/richmenu`
    The menu the user sees now: `{"richMenuId", "source": "user" | "default" | "switched",
    "richMenuAliasId"?, "aliases", "name", "size", "chatBarText", "selected", "areas",
    "imageUrl"}` (`aliases`: every alias pointing to the menu, so the page can mark the tab
    area that switches to the menu shown); 404 `{"message"}` when the user sees none (or is
    unknown).

`POST /_emulator/users/<user_id>/richmenu/switch` `{"richMenuAliasId", "data", "label"?}`
    What LINE does when the user taps a `richmenuswitch` area: the display becomes the alias's
    menu (`SUCCESS`), or stays (`RICHMENU_ALIAS_ID_NOTFOUND`, `RICHMENU_NOTFOUND`); then a
    signed postback webhook with `postback.data` = `data` and `postback.params` =
    `{"newRichMenuAliasId", "status"}` (`newRichMenuAliasId` only on success: LINE leaves it
    out when the switch failed). Answers `{"status", "error", "event", "switch": {"status",
    "richMenuAliasId", "richMenuId"}, "richMenu"}` (`status`/`error`: the bot's answer to
    the webhook, as for the other user actions; `richMenu`: what the user sees now or null).
    The timeline keeps the tapped area's `label` (as given, else the area's own), never sent.

`GET /_emulator/richmenus`, `DELETE /_emulator/richmenus`, `GET /_emulator/richmenus/<id>/image`
    Every menu with its aliases, image, linked users and whether it is the default; forget
    them all; a menu's image bytes (for the page's `<img>`/background).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from bot.emulator import ids, webhooks
from bot.emulator.context import Emulator, current
from bot.emulator.inspection import (
    BadRequest,
    active_user,
    bp,
    register_reply_token,
    request_body,
    string_field,
    tap_fields,
)
from bot.emulator.richmenu_state import RichMenu, RichMenuState, Shown
from bot.emulator.richmenus import image_response
from bot.emulator.store import iso


def image_url(menu_id: str) -> str:
    return f"/_emulator/richmenus/{menu_id}/image"


def shown_json(shown: Shown, aliases: list[str]) -> dict[str, Any]:
    menu = shown.menu
    out: dict[str, Any] = {"richMenuId": menu.rich_menu_id, "source": shown.source}
    if shown.alias_id is not None:
        out["richMenuAliasId"] = shown.alias_id
    out.update(
        {
            "aliases": aliases,
            "name": menu.name,
            "size": dict(menu.size),
            "chatBarText": menu.chat_bar_text,
            "selected": menu.selected,
            "areas": menu.areas,
            "imageUrl": image_url(menu.rich_menu_id) if menu.image is not None else None,
        }
    )
    return out


def _not_shown(message: str) -> ResponseReturnValue:
    return jsonify({"message": message}), 404


@bp.get("/users/<user_id>/richmenu")
def user_rich_menu(user_id: str) -> ResponseReturnValue:
    emu = current()
    if emu.store.get_user(user_id) is None:
        return _not_shown(f"no user {user_id}")
    with emu.store.rich_menus() as menus:
        shown = menus.shown(user_id)
        aliases = menus.aliases_of(shown.menu.rich_menu_id) if shown is not None else []
    if shown is None:
        return _not_shown("the user sees no rich menu")
    return jsonify(shown_json(shown, aliases))


def _switch_params(alias_id: str, status: str) -> dict[str, str]:
    """`postback.params` of a switch: LINE includes `newRichMenuAliasId` only on success."""
    if status == "SUCCESS":
        return {"newRichMenuAliasId": alias_id, "status": status}
    return {"status": status}


def _post_switch(
    emu: Emulator, user_id: str, data: str, params: dict[str, str], tapped: dict[str, str]
) -> Any:
    """Log the tap for the timeline, then send its signed postback webhook to the bot."""
    now = emu.config.clock.now()
    details = {"data": data, "displayText": None, "params": params, **tapped}
    seq = emu.store.record_action(user_id, "postback", now, details)
    event = webhooks.postback_event(user_id, now, ids.reply_token(), data, params)
    register_reply_token(emu, event)
    result = emu.webhooks.dispatch([event])
    emu.store.finish_action(seq, result.status, result.error)
    return {"status": result.status, "error": result.error, "event": event}


@bp.post("/users/<user_id>/richmenu/switch")
def switch_rich_menu(user_id: str) -> ResponseReturnValue:
    emu = current()
    active_user(emu, user_id)
    body = request_body()
    alias_id = string_field(body, "richMenuAliasId")
    assert alias_id is not None
    data = body.get("data")
    if not isinstance(data, str):
        raise BadRequest("'data' must be a string")
    tapped = tap_fields(emu, user_id, {**body, "origin": "richmenu"}, data, alias_id)
    with emu.store.rich_menus() as menus:
        status = menus.switch(user_id, alias_id)
        target = menus.alias(alias_id)
    # The bot may call the rich menu API while it handles the webhook: no lock held here.
    answer = _post_switch(emu, user_id, data, _switch_params(alias_id, status), tapped)
    with emu.store.rich_menus() as menus:
        shown = menus.shown(user_id)
        aliases = menus.aliases_of(shown.menu.rich_menu_id) if shown is not None else []
    answer["switch"] = {"status": status, "richMenuAliasId": alias_id, "richMenuId": target}
    answer["richMenu"] = shown_json(shown, aliases) if shown else None
    return jsonify(answer)


# --- inspection -------------------------------------------------------------------------------


def _menu_json(menus: RichMenuState, menu: RichMenu) -> dict[str, Any]:
    has_image = menu.image is not None
    return {
        **menu.to_json(),
        "hasImage": has_image,
        "imageType": menu.image_type,
        "imageUrl": image_url(menu.rich_menu_id) if has_image else None,
        "aliases": menus.aliases_of(menu.rich_menu_id),
        "linkedUsers": menus.linked_count(menu.rich_menu_id),
        "isDefault": menus.default_id == menu.rich_menu_id,
        "createdAt": iso(menu.created_at),
    }


def _inspection_json(menus: RichMenuState) -> dict[str, Any]:
    return {
        "richmenus": [_menu_json(menus, menu) for menu in menus.all()],
        "defaultRichMenuId": menus.default_id,
        "aliases": [
            {**alias, "menuExists": alias["richMenuId"] in menus.menus}
            for alias in menus.alias_list()
        ],
        "links": dict(menus.links),
        "switched": {
            user_id: {"richMenuAliasId": alias_id, "richMenuId": menu_id}
            for user_id, (alias_id, menu_id) in menus.switched.items()
        },
        "bulkRequests": [
            {
                "requestId": entry.request_id,
                "path": entry.path,
                "richMenuId": entry.rich_menu_id,
                "userCount": entry.user_count,
                "applied": entry.applied,
                "at": iso(entry.at),
            }
            for entry in menus.bulk
        ],
    }


@bp.get("/richmenus")
def rich_menus() -> ResponseReturnValue:
    """Every rich menu, the default, aliases, links, switched displays, bulk requests."""
    with current().store.rich_menus() as menus:
        out = _inspection_json(menus)
    return jsonify(out)


@bp.delete("/richmenus")
def clear_rich_menus() -> ResponseReturnValue:
    current().store.clear_rich_menus()
    return jsonify({"ok": True})


@bp.get("/richmenus/<rich_menu_id>/image")
def rich_menu_image(rich_menu_id: str) -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        menu = menus.menu(rich_menu_id)
    return image_response(menu)
