"""Rich menus: create, validate, read, list, delete, the image, the default, per-user and bulk
links, and aliases (on the Messaging API blueprint of `messaging.py`, so they share its
authentication, rate limits, scripted faults, chaos and request log).

LINE serves the image upload and download on `api-data.line.me`; the SDK is pointed at one
host (`LINE_API_BASE_URL`), so they are served here, on the same origin as everything else.
The state lives in `richmenu_state.RichMenuState` (the store's, under its lock); the rules for
rich menu objects and images are in `richmenu_rules.py`. Status codes and error messages are
the ones the Messaging API reference gives for each endpoint:

- unknown rich menu: 404 `Not found` (get, delete, image, link, default); `richmenu not
  found` for a bulk link (404) and for an alias (400, also when the menu has no image);
- linking (per user, bulk, default) a menu without an image: 400 `must upload richmenu image
  before applying it to user`;
- a malformed user id: 400 `The value for the 'userId' parameter is invalid` (a path
  parameter) or `The property, 'userIds[i]', in the request body is invalid`;
- linking or unlinking a user who is not a friend (never added the account, blocked, unknown):
  200/202 and nothing changes, as LINE documents;
- aliases: 400 `conflict richmenu alias id` for one that exists, 404 `richmenu alias not
  found` for one that does not.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from bot.emulator import ids
from bot.emulator.context import Emulator, current, line_error
from bot.emulator.messaging import BodyError, bp, invalid_request, json_body, read_retry_key
from bot.emulator.richmenu_rules import (
    IMAGE_ALREADY_UPLOADED,
    IMAGE_FORMATS,
    image_problem,
    rich_menu_problems,
)
from bot.emulator.richmenu_state import BulkRequest, RichMenu, RichMenuState
from bot.emulator.validation import ErrorDetail, validate_request

NOT_FOUND = "Not found"
RICHMENU_NOT_FOUND = "richmenu not found"
MUST_UPLOAD_IMAGE = "must upload richmenu image before applying it to user"
NO_DEFAULT = "no default richmenu"
USER_HAS_NO_RICHMENU = "the user has no richmenu"
INVALID_USER_ID = "The value for the 'userId' parameter is invalid"
ALIAS_CONFLICT = "conflict richmenu alias id"
ALIAS_NOT_FOUND = "richmenu alias not found"
TOO_MANY_RICH_MENUS = "The maximum number of rich menus has been reached"
TOO_MANY_ALIASES = "The maximum number of rich menu aliases has been reached"
ALIAS_ID_PATTERN = "^[a-z0-9_-]{1,32}$"


# --- helpers ----------------------------------------------------------------------------------


def _ok(status: int = 200) -> ResponseReturnValue:
    return jsonify({}), status


def _is_friend(emu: Emulator, user_id: str) -> bool:
    """Links only reach friends (LINE answers 200 and changes nothing for anyone else)."""
    user = emu.store.get_user(user_id)
    return user is not None and user.state == "friend"


def _check_user_id(user_id: str) -> None:
    if not ids.is_user_id(user_id):
        raise BodyError(line_error(400, INVALID_USER_ID))


def _check_rich_menu_id(value: Any) -> None:
    """A body's `richMenuId` that is not shaped like one is a 400 naming it."""
    if not isinstance(value, str) or not ids.is_rich_menu_id(value):
        detail = ErrorDetail("invalid richMenuId", "richMenuId")
        raise BodyError(line_error(400, "The request body has 1 error(s)", [detail]))


def _check_alias_id(alias_id: str) -> None:
    if not ids.is_rich_menu_alias_id(alias_id):
        detail = ErrorDetail(f'must match "{ALIAS_ID_PATTERN}"', "richMenuAliasId")
        raise BodyError(line_error(400, "The request has 1 error(s)", [detail]))


def _validated(schema: str) -> dict[str, Any]:
    read_retry_key(supported=False)
    body = json_body()
    details = validate_request(schema, body)
    if details:
        raise BodyError(invalid_request(details))
    return dict(body)


def _bad_user_ids(user_ids: list[str]) -> None:
    for index, user_id in enumerate(user_ids):
        if not ids.is_user_id(user_id):
            message = (
                f"The property, 'userIds[{index}]', in the request body is invalid "
                "(line: -, column: -)"
            )
            raise BodyError(line_error(400, message))


def _record_bulk(emu: Emulator, menu_id: str | None, user_count: int, applied: int) -> None:
    entry = BulkRequest(
        g.line_request_id, request.path, menu_id, user_count, applied, emu.config.clock.now()
    )
    with emu.store.rich_menus() as menus:
        menus.record_bulk(entry)


# --- rich menus -------------------------------------------------------------------------------


def _rich_menu_body() -> dict[str, Any]:
    read_retry_key(supported=False)
    body = json_body()
    details = rich_menu_problems(body)
    if details:
        raise BodyError(invalid_request(details))
    return dict(body)


@bp.post("/v2/bot/richmenu")
def create_rich_menu() -> ResponseReturnValue:
    emu = current()
    body = _rich_menu_body()
    with emu.store.rich_menus() as menus:
        if len(menus.menus) >= emu.config.rich_menu_limit:
            return line_error(400, TOO_MANY_RICH_MENUS)
        menu = menus.create(body, emu.config.clock.now())
    return jsonify({"richMenuId": menu.rich_menu_id})


@bp.post("/v2/bot/richmenu/validate")
def validate_rich_menu() -> ResponseReturnValue:
    _rich_menu_body()
    return _ok()


@bp.get("/v2/bot/richmenu/list")
def list_rich_menus() -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        found = menus.all()
    return jsonify({"richmenus": [menu.to_json() for menu in found]})


@bp.get("/v2/bot/richmenu/<richMenuId>")
def get_rich_menu(richMenuId: str) -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        menu = menus.menu(richMenuId)
    if menu is None:
        return line_error(404, NOT_FOUND)
    return jsonify(menu.to_json())


@bp.delete("/v2/bot/richmenu/<richMenuId>")
def delete_rich_menu(richMenuId: str) -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        deleted = menus.delete(richMenuId)
    return _ok() if deleted else line_error(404, NOT_FOUND)


# --- the image (api-data.line.me at LINE) -----------------------------------------------------


@bp.post("/v2/bot/richmenu/<richMenuId>/content")
def upload_rich_menu_image(richMenuId: str) -> ResponseReturnValue:
    """Once per menu (LINE: "You cannot replace an image attached to a rich menu"). The image
    is read outside the lock; the menu is looked at again before the image is kept."""
    emu = current()
    data = request.get_data(cache=True)
    content_type = request.mimetype or ""
    with emu.store.rich_menus() as menus:
        menu = menus.menu(richMenuId)
    if menu is None:
        return line_error(404, NOT_FOUND)
    if content_type not in IMAGE_FORMATS:
        return line_error(
            415, f"The content type, '{request.content_type or ''}', is not supported"
        )
    if menu.image is not None:
        return line_error(400, IMAGE_ALREADY_UPLOADED)
    problem = image_problem(data, content_type, menu.size)
    if problem is not None:
        return line_error(problem.status, problem.message, problem.details())
    with emu.store.rich_menus() as menus:
        if richMenuId not in menus.menus:
            return line_error(404, NOT_FOUND)
        if menus.has_image(richMenuId):
            return line_error(400, IMAGE_ALREADY_UPLOADED)
        menus.set_image(richMenuId, data, content_type)
    return _ok()


def image_response(menu: RichMenu | None) -> ResponseReturnValue:
    """The menu's image bytes with their content type; 404 when there is none."""
    if menu is None or menu.image is None:
        return line_error(404, NOT_FOUND)
    return Response(menu.image, mimetype=menu.image_type or "application/octet-stream")


@bp.get("/v2/bot/richmenu/<richMenuId>/content")
def download_rich_menu_image(richMenuId: str) -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        menu = menus.menu(richMenuId)
    return image_response(menu)


# --- the default ------------------------------------------------------------------------------


@bp.post("/v2/bot/user/all/richmenu/<richMenuId>")
def set_default_rich_menu(richMenuId: str) -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        if richMenuId not in menus.menus:
            return line_error(404, NOT_FOUND)
        if not menus.has_image(richMenuId):
            return line_error(400, MUST_UPLOAD_IMAGE)
        menus.set_default(richMenuId)
    return _ok()


@bp.get("/v2/bot/user/all/richmenu")
def get_default_rich_menu() -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        menu_id = menus.default_id
    if menu_id is None:
        return line_error(404, NO_DEFAULT)
    return jsonify({"richMenuId": menu_id})


@bp.delete("/v2/bot/user/all/richmenu")
def cancel_default_rich_menu() -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        menus.set_default(None)
    return _ok()


# --- per-user links ---------------------------------------------------------------------------


@bp.post("/v2/bot/user/<userId>/richmenu/<richMenuId>")
def link_rich_menu(userId: str, richMenuId: str) -> ResponseReturnValue:
    emu = current()
    _check_user_id(userId)
    friend = _is_friend(emu, userId)
    with emu.store.rich_menus() as menus:
        if richMenuId not in menus.menus:
            return line_error(404, NOT_FOUND)
        if not menus.has_image(richMenuId):
            return line_error(400, MUST_UPLOAD_IMAGE)
        if friend:
            menus.link(userId, richMenuId)
    return _ok()


@bp.get("/v2/bot/user/<userId>/richmenu")
def get_linked_rich_menu(userId: str) -> ResponseReturnValue:
    emu = current()
    _check_user_id(userId)
    friend = _is_friend(emu, userId)
    with emu.store.rich_menus() as menus:
        menu_id = menus.linked(userId)
    if menu_id is None or not friend:
        return line_error(404, USER_HAS_NO_RICHMENU)
    return jsonify({"richMenuId": menu_id})


@bp.delete("/v2/bot/user/<userId>/richmenu")
def unlink_rich_menu(userId: str) -> ResponseReturnValue:
    emu = current()
    _check_user_id(userId)
    if _is_friend(emu, userId):
        with emu.store.rich_menus() as menus:
            menus.unlink(userId)
    return _ok()


# --- bulk links (accepted with 202; applied at once here) -------------------------------------


@bp.post("/v2/bot/richmenu/bulk/link")
def bulk_link() -> ResponseReturnValue:
    emu = current()
    body = _validated("RichMenuBulkLinkRequest")
    menu_id: str = body["richMenuId"]
    user_ids: list[str] = body["userIds"]
    _bad_user_ids(user_ids)
    _check_rich_menu_id(menu_id)
    friends = [uid for uid in dict.fromkeys(user_ids) if _is_friend(emu, uid)]
    with emu.store.rich_menus() as menus:
        if menu_id not in menus.menus:
            return line_error(404, RICHMENU_NOT_FOUND)
        if not menus.has_image(menu_id):
            return line_error(400, MUST_UPLOAD_IMAGE)
        for user_id in friends:
            menus.link(user_id, menu_id)
    _record_bulk(emu, menu_id, len(user_ids), len(friends))
    return _ok(202)


@bp.post("/v2/bot/richmenu/bulk/unlink")
def bulk_unlink() -> ResponseReturnValue:
    emu = current()
    body = _validated("RichMenuBulkUnlinkRequest")
    user_ids: list[str] = body["userIds"]
    _bad_user_ids(user_ids)
    friends = [uid for uid in dict.fromkeys(user_ids) if _is_friend(emu, uid)]
    with emu.store.rich_menus() as menus:
        for user_id in friends:
            menus.unlink(user_id)
    _record_bulk(emu, None, len(user_ids), len(friends))
    return _ok(202)


# --- aliases ----------------------------------------------------------------------------------


def _unusable_target(menus: RichMenuState, menu_id: str) -> ResponseReturnValue | None:
    """An alias may only point to an existing menu with an image (400 otherwise)."""
    return None if menus.has_image(menu_id) else line_error(400, RICHMENU_NOT_FOUND)


@bp.post("/v2/bot/richmenu/alias")
def create_alias() -> ResponseReturnValue:
    emu = current()
    body = _validated("CreateRichMenuAliasRequest")
    alias_id: str = body["richMenuAliasId"]
    menu_id: str = body["richMenuId"]
    _check_rich_menu_id(menu_id)
    with emu.store.rich_menus() as menus:
        refused = _unusable_target(menus, menu_id)
        if refused is not None:
            return refused
        if menus.alias(alias_id) is not None:
            return line_error(400, ALIAS_CONFLICT)
        if len(menus.aliases) >= emu.config.rich_menu_alias_limit:
            return line_error(400, TOO_MANY_ALIASES)
        menus.set_alias(alias_id, menu_id)
    return _ok()


@bp.get("/v2/bot/richmenu/alias/list")
def list_aliases() -> ResponseReturnValue:
    with current().store.rich_menus() as menus:
        aliases = menus.alias_list()
    return jsonify({"aliases": aliases})


@bp.get("/v2/bot/richmenu/alias/<richMenuAliasId>")
def get_alias(richMenuAliasId: str) -> ResponseReturnValue:
    _check_alias_id(richMenuAliasId)
    with current().store.rich_menus() as menus:
        menu_id = menus.alias(richMenuAliasId)
    if menu_id is None:
        return line_error(404, ALIAS_NOT_FOUND)
    return jsonify({"richMenuAliasId": richMenuAliasId, "richMenuId": menu_id})


@bp.post("/v2/bot/richmenu/alias/<richMenuAliasId>")
def update_alias(richMenuAliasId: str) -> ResponseReturnValue:
    emu = current()
    _check_alias_id(richMenuAliasId)
    body = _validated("UpdateRichMenuAliasRequest")
    menu_id: str = body["richMenuId"]
    _check_rich_menu_id(menu_id)
    with emu.store.rich_menus() as menus:
        if menus.alias(richMenuAliasId) is None:
            return line_error(404, ALIAS_NOT_FOUND)
        refused = _unusable_target(menus, menu_id)
        if refused is not None:
            return refused
        menus.set_alias(richMenuAliasId, menu_id)
    return _ok()


@bp.delete("/v2/bot/richmenu/alias/<richMenuAliasId>")
def delete_alias(richMenuAliasId: str) -> ResponseReturnValue:
    _check_alias_id(richMenuAliasId)
    with current().store.rich_menus() as menus:
        deleted = menus.delete_alias(richMenuAliasId)
    return _ok() if deleted else line_error(404, ALIAS_NOT_FOUND)
