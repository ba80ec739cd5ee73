"""Rich menus in the emulator, driven through the official SDK (`MessagingApi` and
`MessagingApiBlob`, both pointed at the emulator's one origin) over real HTTP; requests the SDK
would refuse to send (over-long or malformed values) go through `requests`."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from linebot.v3.messaging import (
    Action,
    ApiClient,
    ApiException,
    CreateRichMenuAliasRequest,
    MessagingApi,
    MessagingApiBlob,
    PostbackAction,
    RichMenuArea,
    RichMenuBounds,
    RichMenuBulkLinkRequest,
    RichMenuBulkUnlinkRequest,
    RichMenuRequest,
    RichMenuSize,
    RichMenuSwitchAction,
    UpdateRichMenuAliasRequest,
)
from PIL import Image

from bot.emulator import ids
from bot.emulator.ratelimits import RATE_LIMITED
from bot.emulator.richmenu_rules import IMAGE_ALREADY_UPLOADED, IMAGE_SIZE_NOT_ALLOWED
from bot.emulator.richmenus import (
    ALIAS_CONFLICT,
    ALIAS_NOT_FOUND,
    INVALID_USER_ID,
    MUST_UPLOAD_IMAGE,
    NO_DEFAULT,
    RICHMENU_NOT_FOUND,
    TOO_MANY_ALIASES,
    TOO_MANY_RICH_MENUS,
    USER_HAS_NO_RICHMENU,
)
from tests.emulator.conftest import TOKEN, Emu, Hook

RICH_MENU_ID = re.compile(r"^richmenu-[0-9a-f]{32}$")
BULK_LINK = "/v2/bot/richmenu/bulk/link"
COMPACT = (2500, 843)


# --- helpers ----------------------------------------------------------------------------------


def error_body(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


def image(size: tuple[int, int] = COMPACT, kind: str = "PNG", noise: bool = False) -> bytes:
    """An image of `size`; `noise` makes a PNG too random to compress under 1 MB."""
    if noise:
        picture = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        picture = Image.new("RGB", size, (6, 199, 85))
    out = io.BytesIO()
    picture.save(out, kind)
    return out.getvalue()


def area(x: int, width: int, action: Action, height: int = COMPACT[1]) -> RichMenuArea:
    return RichMenuArea(bounds=RichMenuBounds(x=x, y=0, width=width, height=height), action=action)


def menu_request(name: str = "メイン", *areas: RichMenuArea) -> RichMenuRequest:
    return RichMenuRequest(
        size=RichMenuSize(width=COMPACT[0], height=COMPACT[1]),
        selected=True,
        name=name,
        chat_bar_text="メニュー",
        areas=list(areas) or [area(0, 2500, PostbackAction(data="menu=main"))],
    )


MISSING = object()  # a key left out of `menu_json`


def menu_json(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "size": {"width": 2500, "height": 843},
        "selected": False,
        "name": "raw",
        "chatBarText": "タップ",
        "areas": [
            {
                "bounds": {"x": 0, "y": 0, "width": 2500, "height": 843},
                "action": {"type": "postback", "data": "a=1"},
            }
        ],
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not MISSING}


def raw(emu: Emu, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
    return requests.request(method, emu.url + path, headers=headers, timeout=30, **kwargs)


def upload(
    blob: MessagingApiBlob, menu_id: str, data: bytes, content_type: str = "image/png"
) -> None:
    blob.set_rich_menu_image(menu_id, data, _headers={"Content-Type": content_type})


@pytest.fixture
def blob(api_client: ApiClient) -> MessagingApiBlob:
    return MessagingApiBlob(api_client)


@pytest.fixture
def ready_menu(api: MessagingApi, blob: MessagingApiBlob) -> Callable[..., str]:
    """Create a rich menu and upload its image: its id."""

    def make(name: str = "メイン", *areas: RichMenuArea) -> str:
        menu_id = str(api.create_rich_menu(menu_request(name, *areas)).rich_menu_id)
        upload(blob, menu_id, image())
        return menu_id

    return make


def api_error(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    return int(caught.value.status), error_body(caught.value)


# --- rich menu objects ------------------------------------------------------------------------


def test_create_get_list_delete(api: MessagingApi) -> None:
    menu_id = str(api.create_rich_menu(menu_request("会員")).rich_menu_id)
    assert RICH_MENU_ID.match(menu_id)
    got = api.get_rich_menu(menu_id)
    assert (got.rich_menu_id, got.name, got.chat_bar_text, got.selected) == (
        menu_id,
        "会員",
        "メニュー",
        True,
    )
    assert (got.size.width, got.size.height) == COMPACT
    action = got.areas[0].action
    assert isinstance(action, PostbackAction) and action.data == "menu=main"
    other = str(api.create_rich_menu(menu_request("非会員")).rich_menu_id)
    listed = api.get_rich_menu_list().richmenus
    assert [m.rich_menu_id for m in listed] == [menu_id, other]

    api.delete_rich_menu(menu_id)
    assert api_error(lambda: api.get_rich_menu(menu_id)) == (404, {"message": "Not found"})
    assert api_error(lambda: api.delete_rich_menu(menu_id)) == (404, {"message": "Not found"})
    assert [m.rich_menu_id for m in api.get_rich_menu_list().richmenus] == [other]


def test_validate_checks_without_creating(emulator: Emu, api: MessagingApi) -> None:
    api.validate_rich_menu_object(menu_request())
    response = raw(emulator, "POST", "/v2/bot/richmenu/validate", json=menu_json(name=MISSING))
    assert response.status_code == 400
    assert response.json()["details"] == [{"message": "must be specified", "property": "name"}]
    assert api.get_rich_menu_list().richmenus == []


def _areas(count: int) -> list[dict[str, Any]]:
    return [
        {
            "bounds": {"x": 100 * i, "y": 0, "width": 100, "height": 843},
            "action": {"type": "message", "text": f"{i}"},
        }
        for i in range(count)
    ]


def _action(action: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"bounds": {"x": 0, "y": 0, "width": 2500, "height": 843}, "action": action}]


@pytest.mark.parametrize(
    ("changes", "prop", "message"),
    [
        ({"size": {"width": 799, "height": 250}}, "size.width", "must be between 800 and 2500"),
        ({"size": {"width": 2501, "height": 843}}, "size.width", "must be between 800 and 2500"),
        ({"size": {"width": 800, "height": 249}}, "size.height", "must be at least 250"),
        (
            {"size": {"width": 2500, "height": 1725}},
            "size",
            "the aspect ratio (width / height) must be at least 1.45",
        ),
        ({"areas": []}, "areas", "Size must be between 1 and 20"),
        ({"areas": _areas(21)}, "areas", "Size must be between 1 and 20"),
        (
            {
                "areas": [
                    {
                        "bounds": {"x": 1, "y": 0, "width": 2500, "height": 843},
                        "action": {"type": "postback", "data": "x"},
                    }
                ]
            },
            "areas[0].bounds",
            "must be within the rich menu size (2500x843)",
        ),
        ({"chatBarText": "あ" * 15}, "chatBarText", "Length must be between 0 and 14"),
        ({"name": "n" * 301}, "name", "Length must be between 0 and 300"),
        (
            {"areas": _action({"type": "postback", "data": "d" * 301})},
            "areas[0].action.data",
            "Length must be between 0 and 300",
        ),
        (
            {"areas": _action({"type": "richmenuswitch", "data": "to-b"})},
            "areas[0].action.richMenuAliasId",
            "must be specified",
        ),
        (
            {"areas": _action({"type": "richmenuswitch", "richMenuAliasId": "b"})},
            "areas[0].action.data",
            "must be specified",
        ),
        (
            {"areas": _action({"type": "uri", "uri": "ftp://x"})},
            "areas[0].action.uri",
            "invalid uri",
        ),
        (
            {"areas": _action({"type": "camera", "label": "カメラ"})},
            "areas[0].action.type",
            "the camera action cannot be used in a rich menu",
        ),
        (
            {"areas": _action({"type": "message", "label": "l" * 21, "text": "x"})},
            "areas[0].action.label",
            "Length must be between 0 and 20",
        ),
        ({"selected": MISSING}, "selected", "must be specified"),
        ({"selected": None}, "selected", "must be of type boolean"),
    ],
)
def test_line_rules_for_rich_menu_objects(
    emulator: Emu, api: MessagingApi, changes: dict[str, Any], prop: str, message: str
) -> None:
    for path in ("/v2/bot/richmenu/validate", "/v2/bot/richmenu"):
        response = raw(emulator, "POST", path, json=menu_json(**changes))
        assert response.status_code == 400, response.text
        assert {"message": message, "property": prop} in response.json()["details"]
    assert api.get_rich_menu_list().richmenus == []


def test_at_most_the_limit_of_rich_menus(make_emulator: Callable[..., Emu]) -> None:
    emu = make_emulator(rich_menu_limit=2)
    created = [raw(emu, "POST", "/v2/bot/richmenu", json=menu_json()) for _ in range(3)]
    assert [r.status_code for r in created] == [200, 200, 400]
    assert created[2].json() == {"message": TOO_MANY_RICH_MENUS}
    first = created[0].json()["richMenuId"]
    assert raw(emu, "DELETE", f"/v2/bot/richmenu/{first}").status_code == 200
    assert raw(emu, "POST", "/v2/bot/richmenu", json=menu_json()).status_code == 200


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_image_upload_and_download(
    emulator: Emu, api: MessagingApi, blob: MessagingApiBlob, kind: str, content_type: str
) -> None:
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    data = image(kind=kind)
    upload(blob, menu_id, data, content_type)
    assert bytes(blob.get_rich_menu_image(menu_id)) == data
    control = requests.get(f"{emulator.url}/_emulator/richmenus/{menu_id}/image", timeout=5)
    assert (control.status_code, control.headers["Content-Type"]) == (200, content_type)
    assert control.content == data
    # The request log keeps what was uploaded, not a megabyte of bytes.
    logged = emulator.client.requests(path=f"/v2/bot/richmenu/{menu_id}/content", method="POST")
    assert [entry["body"] for entry in logged] == [f"<{len(data)} bytes of {content_type}>"]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        (image((2500, 1686)), "image/png", 400, IMAGE_SIZE_NOT_ALLOWED),
        (image(kind="GIF"), "image/gif", 415, "The content type, 'image/gif', is not supported"),
        (image(kind="GIF"), "image/png", 400, None),
        (image(kind="PNG"), "image/jpeg", 400, None),
    ],
    ids=["wrong-pixel-size", "gif", "gif-labelled-png", "png-labelled-jpeg"],
)
def test_image_rules(
    api: MessagingApi,
    blob: MessagingApiBlob,
    data: bytes,
    content_type: str,
    status: int,
    message: str | None,
) -> None:
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    got_status, body = api_error(lambda: upload(blob, menu_id, data, content_type))
    assert got_status == status
    if message is not None:
        assert body["message"] == message
    else:
        assert "details" in body and body["details"][0]["property"] == "image"
    assert api_error(lambda: blob.get_rich_menu_image(menu_id))[0] == 404
    upload(blob, menu_id, image())  # a refused upload leaves the menu open for a good one


def test_over_1_mb_is_refused_whatever_the_pixels(
    api: MessagingApi, blob: MessagingApiBlob
) -> None:
    data = image(noise=True)
    assert len(data) > 1024 * 1024
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    status, body = api_error(lambda: upload(blob, menu_id, data))
    assert (status, body["message"]) == (400, IMAGE_SIZE_NOT_ALLOWED)
    assert "bytes" in body["details"][0]["message"]


def test_an_image_is_uploaded_once(api: MessagingApi, blob: MessagingApiBlob) -> None:
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    first = image()
    upload(blob, menu_id, first)
    again = image(kind="JPEG")
    assert api_error(lambda: upload(blob, menu_id, again, "image/jpeg")) == (
        400,
        {"message": IMAGE_ALREADY_UPLOADED},
    )
    assert bytes(blob.get_rich_menu_image(menu_id)) == first


def test_image_of_an_unknown_menu_is_404(blob: MessagingApiBlob) -> None:
    unknown = ids.rich_menu_id()
    assert api_error(lambda: upload(blob, unknown, image())) == (404, {"message": "Not found"})
    assert api_error(lambda: blob.get_rich_menu_image(unknown))[0] == 404


# --- the default and per-user links -----------------------------------------------------------


def test_linking_needs_an_image(
    emulator: Emu, api: MessagingApi, blob: MessagingApiBlob, friend: str
) -> None:
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    refused = (400, {"message": MUST_UPLOAD_IMAGE})
    assert api_error(lambda: api.link_rich_menu_id_to_user(friend, menu_id)) == refused
    assert api_error(lambda: api.set_default_rich_menu(menu_id)) == refused
    bulk = RichMenuBulkLinkRequest(rich_menu_id=menu_id, user_ids=[friend])
    assert api_error(lambda: api.link_rich_menu_id_to_users(bulk)) == refused
    assert emulator.client.rich_menu(friend) is None
    upload(blob, menu_id, image())
    api.link_rich_menu_id_to_user(friend, menu_id)
    assert api.get_rich_menu_id_of_user(friend).rich_menu_id == menu_id


def test_link_get_and_unlink_per_user(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    no_menu = (404, {"message": USER_HAS_NO_RICHMENU})
    assert api_error(lambda: api.get_rich_menu_id_of_user(friend)) == no_menu
    first, second = ready_menu("A"), ready_menu("B")
    api.link_rich_menu_id_to_user(friend, first)
    api.link_rich_menu_id_to_user(friend, second)  # replaces the link
    assert api.get_rich_menu_id_of_user(friend).rich_menu_id == second
    shown = emulator.client.rich_menu(friend)
    assert shown is not None
    assert (shown["richMenuId"], shown["source"], shown["name"]) == (second, "user", "B")
    assert shown["imageUrl"] == f"/_emulator/richmenus/{second}/image"
    assert shown["size"] == {"width": 2500, "height": 843} and shown["chatBarText"] == "メニュー"
    api.unlink_rich_menu_id_from_user(friend)
    assert api_error(lambda: api.get_rich_menu_id_of_user(friend)) == no_menu
    assert emulator.client.rich_menu(friend) is None


def test_per_user_errors(api: MessagingApi, ready_menu: Callable[..., str], friend: str) -> None:
    menu_id = ready_menu()
    bad_user = (400, {"message": INVALID_USER_ID})
    assert api_error(lambda: api.link_rich_menu_id_to_user("someone", menu_id)) == bad_user
    assert api_error(lambda: api.get_rich_menu_id_of_user("someone")) == bad_user
    assert api_error(lambda: api.unlink_rich_menu_id_from_user("someone")) == bad_user
    unknown = ids.rich_menu_id()
    not_found = (404, {"message": "Not found"})
    assert api_error(lambda: api.link_rich_menu_id_to_user(friend, unknown)) == not_found
    assert api_error(lambda: api.set_default_rich_menu(unknown)) == not_found


def test_links_reach_only_friends(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    """LINE answers 200 and links nothing for users who never added or who blocked."""
    menu_id = ready_menu()
    stranger = emulator.client.create_user("通りすがり")["user_id"]
    blocked = emulator.client.create_user("ブロック")["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    for user_id in (stranger, blocked, ids.user_id()):
        api.link_rich_menu_id_to_user(user_id, menu_id)
        status, _ = api_error(lambda uid=user_id: api.get_rich_menu_id_of_user(uid))
        assert status == 404
    assert emulator.client.rich_menus()["links"] == {}


def test_the_default_and_its_priority(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    assert api_error(api.get_default_rich_menu_id) == (404, {"message": NO_DEFAULT})
    default, personal = ready_menu("default"), ready_menu("personal")
    api.set_default_rich_menu(default)
    assert api.get_default_rich_menu_id().rich_menu_id == default
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and (shown["richMenuId"], shown["source"]) == (default, "default")
    # The per-user link wins over the default; the default is not a per-user link.
    assert api_error(lambda: api.get_rich_menu_id_of_user(friend))[0] == 404
    api.link_rich_menu_id_to_user(friend, personal)
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and (shown["richMenuId"], shown["source"]) == (personal, "user")
    api.cancel_default_rich_menu()
    assert api_error(api.get_default_rich_menu_id) == (404, {"message": NO_DEFAULT})
    api.unlink_rich_menu_id_from_user(friend)
    assert emulator.client.rich_menu(friend) is None


def test_deleting_a_menu_unlinks_it_and_keeps_its_aliases(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    menu_id = ready_menu()
    api.set_default_rich_menu(menu_id)
    api.link_rich_menu_id_to_user(friend, menu_id)
    api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="main", rich_menu_id=menu_id)
    )
    api.delete_rich_menu(menu_id)
    assert api_error(lambda: api.get_rich_menu_id_of_user(friend))[0] == 404
    assert api_error(api.get_default_rich_menu_id)[0] == 404
    assert emulator.client.rich_menu(friend) is None
    # The alias stays, pointing nowhere: a switch to it then finds no menu (RICHMENU_NOTFOUND).
    assert api.get_rich_menu_alias("main").rich_menu_id == menu_id
    assert emulator.client.rich_menus()["aliases"] == [
        {"richMenuAliasId": "main", "richMenuId": menu_id, "menuExists": False}
    ]


# --- bulk links -------------------------------------------------------------------------------


def test_bulk_link_1200_users_in_three_requests(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str]
) -> None:
    user_ids = [ids.user_id() for _ in range(1200)]
    emulator.client.add_friends(user_ids)
    menu_id = ready_menu()
    for start in range(0, len(user_ids), 500):
        chunk = user_ids[start : start + 500]
        answer = api.link_rich_menu_id_to_users_with_http_info(
            RichMenuBulkLinkRequest(rich_menu_id=menu_id, user_ids=chunk)
        )
        assert answer.status_code == 202
    logged = emulator.client.requests(path=BULK_LINK)
    assert [(e["status"], len(e["body"]["userIds"])) for e in logged] == [
        (202, 500),
        (202, 500),
        (202, 200),
    ]
    state = emulator.client.rich_menus()
    assert [(b["userCount"], b["applied"]) for b in state["bulkRequests"]] == [
        (500, 500),
        (500, 500),
        (200, 200),
    ]
    assert state["richmenus"][0]["linkedUsers"] == 1200
    assert set(state["links"]) == set(user_ids)
    for user_id in (user_ids[0], user_ids[499], user_ids[500], user_ids[-1]):
        assert api.get_rich_menu_id_of_user(user_id).rich_menu_id == menu_id

    answer = api.unlink_rich_menu_id_from_users_with_http_info(
        RichMenuBulkUnlinkRequest(user_ids=user_ids[:500])
    )
    assert answer.status_code == 202
    assert emulator.client.rich_menus()["richmenus"][0]["linkedUsers"] == 700
    assert api_error(lambda: api.get_rich_menu_id_of_user(user_ids[0]))[0] == 404


def test_bulk_link_of_more_than_500_users_is_400(
    emulator: Emu, ready_menu: Callable[..., str]
) -> None:
    user_ids = [ids.user_id() for _ in range(501)]
    emulator.client.add_friends(user_ids)
    menu_id = ready_menu()
    for path, body in (
        (BULK_LINK, {"richMenuId": menu_id, "userIds": user_ids}),
        ("/v2/bot/richmenu/bulk/unlink", {"userIds": user_ids}),
    ):
        response = raw(emulator, "POST", path, json=body)
        assert response.status_code == 400
        assert response.json()["details"] == [
            {"message": "Size must be between 1 and 500", "property": "userIds"}
        ]
    assert emulator.client.rich_menus()["links"] == {}


def test_bulk_link_errors(emulator: Emu, api: MessagingApi, friend: str) -> None:
    menu_id = str(api.create_rich_menu(menu_request()).rich_menu_id)
    bad_user = raw(
        emulator, "POST", BULK_LINK, json={"richMenuId": menu_id, "userIds": [friend, "x"]}
    )
    assert (bad_user.status_code, bad_user.json()) == (
        400,
        {
            "message": "The property, 'userIds[1]', in the request body is invalid (line: -, column: -)"
        },
    )
    malformed = raw(emulator, "POST", BULK_LINK, json={"richMenuId": "menu", "userIds": [friend]})
    assert malformed.status_code == 400
    assert malformed.json()["details"] == [
        {"message": "invalid richMenuId", "property": "richMenuId"}
    ]
    unknown = RichMenuBulkLinkRequest(rich_menu_id=ids.rich_menu_id(), user_ids=[friend])
    assert api_error(lambda: api.link_rich_menu_id_to_users(unknown)) == (
        404,
        {"message": RICHMENU_NOT_FOUND},
    )
    assert emulator.client.rich_menus()["bulkRequests"] == []


# --- aliases ----------------------------------------------------------------------------------


def test_alias_create_get_update_list_delete(
    api: MessagingApi, ready_menu: Callable[..., str]
) -> None:
    first, second = ready_menu("A"), ready_menu("B")
    api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="tab-a", rich_menu_id=first)
    )
    api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="tab_b", rich_menu_id=second)
    )
    assert api.get_rich_menu_alias("tab-a").rich_menu_id == first
    api.update_rich_menu_alias("tab-a", UpdateRichMenuAliasRequest(rich_menu_id=second))
    listed = api.get_rich_menu_alias_list().aliases
    assert [(a.rich_menu_alias_id, a.rich_menu_id) for a in listed] == [
        ("tab-a", second),
        ("tab_b", second),
    ]
    api.delete_rich_menu_alias("tab-a")
    gone = (404, {"message": ALIAS_NOT_FOUND})
    assert api_error(lambda: api.get_rich_menu_alias("tab-a")) == gone
    assert api_error(lambda: api.delete_rich_menu_alias("tab-a")) == gone
    update = UpdateRichMenuAliasRequest(rich_menu_id=second)
    assert api_error(lambda: api.update_rich_menu_alias("tab-a", update)) == gone
    assert [a.rich_menu_alias_id for a in api.get_rich_menu_alias_list().aliases] == ["tab_b"]


def test_alias_errors(emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str]) -> None:
    menu_id = ready_menu()
    imageless = str(api.create_rich_menu(menu_request()).rich_menu_id)
    create = CreateRichMenuAliasRequest(rich_menu_alias_id="main", rich_menu_id=menu_id)
    api.create_rich_menu_alias(create)
    assert api_error(lambda: api.create_rich_menu_alias(create)) == (
        400,
        {"message": ALIAS_CONFLICT},
    )
    not_found = (400, {"message": RICHMENU_NOT_FOUND})
    for target in (imageless, ids.rich_menu_id()):
        other = CreateRichMenuAliasRequest(rich_menu_alias_id="other", rich_menu_id=target)
        assert api_error(lambda o=other: api.create_rich_menu_alias(o)) == not_found
        update = UpdateRichMenuAliasRequest(rich_menu_id=target)
        assert api_error(lambda u=update: api.update_rich_menu_alias("main", u)) == not_found
    invalid = raw(
        emulator,
        "POST",
        "/v2/bot/richmenu/alias",
        json={"richMenuAliasId": "Main Menu", "richMenuId": menu_id},
    )
    assert invalid.status_code == 400
    assert invalid.json()["details"][0]["property"] == "richMenuAliasId"
    assert raw(emulator, "GET", "/v2/bot/richmenu/alias/Main%20Menu").status_code == 400
    assert api.get_rich_menu_alias("main").rich_menu_id == menu_id


def test_at_most_the_limit_of_aliases(
    make_emulator: Callable[..., Emu],
) -> None:
    emu = make_emulator(rich_menu_alias_limit=1)
    menu_id = raw(emu, "POST", "/v2/bot/richmenu", json=menu_json()).json()["richMenuId"]
    assert (
        raw(
            emu,
            "POST",
            f"/v2/bot/richmenu/{menu_id}/content",
            data=image(),
            headers={"Content-Type": "image/png"},
        ).status_code
        == 200
    )
    answers = [
        raw(
            emu,
            "POST",
            "/v2/bot/richmenu/alias",
            json={"richMenuAliasId": a, "richMenuId": menu_id},
        )
        for a in ("a", "b")
    ]
    assert [r.status_code for r in answers] == [200, 400]
    assert answers[1].json() == {"message": TOO_MANY_ALIASES}


# --- what a user sees and the rich menu switch action -----------------------------------------


@pytest.fixture
def tabs(api: MessagingApi, ready_menu: Callable[..., str]) -> tuple[str, str]:
    """Two menus that switch to each other through aliases tab-a and tab-b."""
    first = ready_menu(
        "A", area(0, 2500, RichMenuSwitchAction(rich_menu_alias_id="tab-b", data="to=b"))
    )
    second = ready_menu(
        "B", area(0, 2500, RichMenuSwitchAction(rich_menu_alias_id="tab-a", data="to=a"))
    )
    for alias_id, menu_id in (("tab-a", first), ("tab-b", second)):
        api.create_rich_menu_alias(
            CreateRichMenuAliasRequest(rich_menu_alias_id=alias_id, rich_menu_id=menu_id)
        )
    return first, second


def test_a_switch_shows_the_aliased_menu_and_posts_the_postback(
    emulator: Emu, api: MessagingApi, hook: Hook, friend: str, tabs: tuple[str, str]
) -> None:
    first, second = tabs
    api.link_rich_menu_id_to_user(friend, first)
    answer = emulator.client.switch_rich_menu(friend, "tab-b", "to=b")
    assert answer["status"] == 200
    assert answer["switch"] == {
        "status": "SUCCESS",
        "richMenuAliasId": "tab-b",
        "richMenuId": second,
    }
    assert (answer["richMenu"]["richMenuId"], answer["richMenu"]["source"]) == (second, "switched")
    shown = emulator.client.rich_menu(friend)
    assert shown is not None
    assert (shown["richMenuId"], shown["source"], shown["richMenuAliasId"]) == (
        second,
        "switched",
        "tab-b",
    )
    event = hook.events[-1]
    assert event["type"] == "postback" and event["source"]["userId"] == friend
    assert event["postback"] == {
        "data": "to=b",
        "params": {"newRichMenuAliasId": "tab-b", "status": "SUCCESS"},
    }
    assert hook.received[-1].signature_valid
    assert event["replyToken"]  # the bot may answer the tap
    # Back again, then a new link from the bot replaces the switched display at once.
    emulator.client.switch_rich_menu(friend, "tab-a", "to=a")
    emulator.client.switch_rich_menu(friend, "tab-b", "to=b")
    api.link_rich_menu_id_to_user(friend, first)
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and (shown["richMenuId"], shown["source"]) == (first, "user")


@pytest.mark.parametrize(
    ("alias_id", "status"),
    [("tab-z", "RICHMENU_ALIAS_ID_NOTFOUND"), ("tab-b", "RICHMENU_NOTFOUND")],
)
def test_a_failed_switch_keeps_the_menu(
    emulator: Emu,
    api: MessagingApi,
    hook: Hook,
    friend: str,
    tabs: tuple[str, str],
    alias_id: str,
    status: str,
) -> None:
    first, second = tabs
    api.delete_rich_menu(second)  # tab-b now points to a deleted menu
    api.set_default_rich_menu(first)
    answer = emulator.client.switch_rich_menu(friend, alias_id, "to=b")
    assert answer["switch"]["status"] == status and answer["status"] == 200
    # LINE leaves newRichMenuAliasId out when the switch failed.
    assert hook.events[-1]["postback"] == {"data": "to=b", "params": {"status": status}}
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and (shown["richMenuId"], shown["source"]) == (first, "default")


def test_a_new_default_ends_switched_displays(
    emulator: Emu, api: MessagingApi, friend: str, tabs: tuple[str, str]
) -> None:
    first, second = tabs
    api.set_default_rich_menu(first)
    emulator.client.switch_rich_menu(friend, "tab-b", "to=b")
    assert emulator.client.rich_menus()["switched"] == {
        friend: {"richMenuAliasId": "tab-b", "richMenuId": second}
    }
    api.set_default_rich_menu(first)
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and (shown["richMenuId"], shown["source"]) == (first, "default")
    timeline = requests.get(f"{emulator.url}/_emulator/users/{friend}/timeline", timeout=5).json()
    taps = [item for item in timeline["items"] if item["type"] == "postback"]
    assert [t["params"] for t in taps] == [{"newRichMenuAliasId": "tab-b", "status": "SUCCESS"}]


def test_the_timeline_names_what_was_tapped_and_the_webhook_does_not(
    emulator: Emu, api: MessagingApi, hook: Hook, friend: str, ready_menu: Callable[..., str]
) -> None:
    """For the simulator: a tap's label and where it was (as the page says, else the area of
    the user's menu that posts the data), never the data alone; the bot gets LINE's event."""
    menu_id = ready_menu(
        "会員",
        area(0, 1250, RichMenuSwitchAction(label="会員", rich_menu_alias_id="m", data="tab=m")),
        area(1250, 1250, PostbackAction(label="ポイント", data="rm1|member|4|b438ef10")),
    )
    api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="m", rich_menu_id=menu_id)
    )
    api.link_rich_menu_id_to_user(friend, menu_id)
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and shown["aliases"] == ["m"] and "richMenuAliasId" not in shown

    postback = f"{emulator.url}/_emulator/users/{friend}/postback"
    emulator.client.postback(friend, "rm1|member|4|b438ef10")  # found on the user's menu
    given = {"data": "q=1", "label": "選ぶ", "origin": "message"}
    assert requests.post(postback, json=given, timeout=5).status_code == 200
    emulator.client.postback(friend, "unknown")  # nothing to name it by
    emulator.client.switch_rich_menu(friend, "m", "tab=m")
    bad = requests.post(postback, json={"data": "x", "origin": "elsewhere"}, timeout=5)
    assert bad.status_code == 400
    label = requests.post(postback, json={"data": "x", "label": 3}, timeout=5)
    assert label.status_code == 400

    timeline = requests.get(f"{emulator.url}/_emulator/users/{friend}/timeline", timeout=5)
    taps = [item for item in timeline.json()["items"] if item["type"] == "postback"]
    assert [(t["data"], t.get("label"), t.get("origin")) for t in taps] == [
        ("rm1|member|4|b438ef10", "ポイント", "richmenu"),
        ("q=1", "選ぶ", "message"),
        ("unknown", None, None),
        ("tab=m", "会員", "richmenu"),
    ]
    sent = [e["postback"] for e in hook.events if e["type"] == "postback"]
    assert sent[:3] == [{"data": "rm1|member|4|b438ef10"}, {"data": "q=1"}, {"data": "unknown"}]
    assert sent[3] == {"data": "tab=m", "params": {"newRichMenuAliasId": "m", "status": "SUCCESS"}}
    shown = emulator.client.rich_menu(friend)
    assert shown is not None and shown["richMenuAliasId"] == "m" and shown["aliases"] == ["m"]


def test_switch_control_errors(emulator: Emu, friend: str) -> None:
    url = f"{emulator.url}/_emulator/users/{friend}/richmenu/switch"
    assert requests.post(url, json={"data": "x"}, timeout=5).status_code == 400
    assert requests.post(url, json={"richMenuAliasId": "a"}, timeout=5).status_code == 400
    unknown = f"{emulator.url}/_emulator/users/{ids.user_id()}/richmenu/switch"
    assert (
        requests.post(unknown, json={"richMenuAliasId": "a", "data": ""}, timeout=5).status_code
        == 404
    )
    emulator.client.unfollow(friend)
    blocked = requests.post(url, json={"richMenuAliasId": "a", "data": ""}, timeout=5)
    assert blocked.status_code == 409


def test_inspection_and_reset(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    menu_id = ready_menu()
    api.set_default_rich_menu(menu_id)
    api.link_rich_menu_id_to_user(friend, menu_id)
    api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="main", rich_menu_id=menu_id)
    )
    state = emulator.client.rich_menus()
    (menu,) = state["richmenus"]
    assert {
        k: menu[k]
        for k in ("richMenuId", "hasImage", "imageType", "aliases", "linkedUsers", "isDefault")
    } == {
        "richMenuId": menu_id,
        "hasImage": True,
        "imageType": "image/png",
        "aliases": ["main"],
        "linkedUsers": 1,
        "isDefault": True,
    }
    assert state["defaultRichMenuId"] == menu_id and state["links"] == {friend: menu_id}
    emulator.client.reset()
    cleared = emulator.client.rich_menus()
    assert (cleared["richmenus"], cleared["aliases"], cleared["defaultRichMenuId"]) == (
        [],
        [],
        None,
    )
    assert api.get_rich_menu_list().richmenus == []


def test_clearing_only_the_rich_menus(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str], friend: str
) -> None:
    api.link_rich_menu_id_to_user(friend, ready_menu())
    assert requests.delete(f"{emulator.url}/_emulator/richmenus", timeout=5).status_code == 200
    assert emulator.client.rich_menu(friend) is None
    assert emulator.client.user(friend)["state"] == "friend"  # users stay


# --- rate limits, faults and chaos apply here too ---------------------------------------------


def test_create_is_rate_limited_when_limits_are_on(make_emulator: Callable[..., Emu]) -> None:
    emu = make_emulator(rate_limits={"enabled": True, "limits": {"POST /v2/bot/richmenu": "2/h"}})
    answers = [raw(emu, "POST", "/v2/bot/richmenu", json=menu_json()) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].json() == {"message": RATE_LIMITED}
    assert emu.client.rate_limits()["limits"]["POST /v2/bot/richmenu"] == "2/h"
    # Another endpoint has its own bucket.
    assert raw(emu, "POST", "/v2/bot/richmenu/validate", json=menu_json()).status_code == 200
    assert len(raw(emu, "GET", "/v2/bot/richmenu/list").json()["richmenus"]) == 2


def test_a_scripted_fault_fails_the_call_and_changes_nothing(
    emulator: Emu, api: MessagingApi
) -> None:
    emulator.client.add_fault(path="/v2/bot/richmenu", status=500)
    assert api_error(lambda: api.create_rich_menu(menu_request()))[0] == 500
    assert api.get_rich_menu_list().richmenus == []


def test_accept_then_fail_on_alias_creation_then_retry_is_a_conflict(
    emulator: Emu, api: MessagingApi, ready_menu: Callable[..., str]
) -> None:
    menu_id = ready_menu()
    emulator.client.add_fault(path="/v2/bot/richmenu/alias", status=500, mode="accept_then_fail")
    create = CreateRichMenuAliasRequest(rich_menu_alias_id="main", rich_menu_id=menu_id)
    assert api_error(lambda: api.create_rich_menu_alias(create))[0] == 500
    assert api_error(lambda: api.create_rich_menu_alias(create)) == (
        400,
        {"message": ALIAS_CONFLICT},
    )
    assert api.get_rich_menu_alias("main").rich_menu_id == menu_id


def test_chaos_dropped_bulk_link_is_applied(
    emulator: Emu, ready_menu: Callable[..., str], friend: str
) -> None:
    menu_id = ready_menu()
    emulator.client.set_chaos({"accept_then_drop": 1.0}, paths=[BULK_LINK])
    with pytest.raises(requests.ConnectionError):
        raw(emulator, "POST", BULK_LINK, json={"richMenuId": menu_id, "userIds": [friend]})
    emulator.client.clear_chaos()
    assert emulator.client.rich_menus()["links"] == {friend: menu_id}
    (logged,) = emulator.client.requests(path=BULK_LINK)
    assert logged["response_dropped"] is True
