"""A catalogue rich menu as LINE sees it: the menu object, its image, its content hash, and
the postback data its taps carry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.catalogue.models import PickerSpec, RichMenuArea, RichMenuDoc

# Postback data of an area tap: rm1|<menu>|<area index>|<what the tap does, hashed>. The
# hash lets a tap on a menu version still on a phone (before sync re-links it) be told from
# a tap on today's area at that index: it is ignored rather than run the wrong actions.
TAP_DATA_PREFIX = "rm1"


def tap_digest(area: RichMenuArea) -> str:
    return hashlib.sha256(area.tap.model_dump_json().encode()).hexdigest()[:8]


def tap_data(menu: str, index: int, area: RichMenuArea) -> str:
    return f"{TAP_DATA_PREFIX}|{menu}|{index}|{tap_digest(area)}"


@dataclass(frozen=True)
class TapRef:
    """Which area of which menu a postback came from, and what that area did then."""

    menu: str
    index: int
    digest: str

    @classmethod
    def parse(cls, data: str) -> TapRef | None:
        parts = data.split("|")
        if len(parts) != 4 or parts[0] != TAP_DATA_PREFIX or not parts[2].isdigit():
            return None
        return cls(parts[1], int(parts[2]), parts[3])


def area_action(menu: RichMenuDoc, index: int, area: RichMenuArea) -> dict[str, Any]:
    """LINE's action object for one area's tap."""
    tap = area.tap
    data = tap.postback or tap_data(menu.rich_menu, index, area)
    action: dict[str, Any]
    if tap.uri is not None:
        action = {"type": "uri", "uri": tap.uri}
    elif tap.message is not None:
        action = {"type": "message", "text": tap.message}
    elif tap.switch is not None:
        action = {"type": "richmenuswitch", "richMenuAliasId": tap.switch, "data": data}
    elif tap.datetime is not None:
        picker = tap.datetime if isinstance(tap.datetime, PickerSpec) else None
        mode = picker.mode if picker is not None else tap.datetime
        action = {"type": "datetimepicker", "data": data, "mode": mode}
        if picker is not None:
            for key in ("initial", "min", "max"):
                if getattr(picker, key) is not None:
                    action[key] = getattr(picker, key)
    else:
        action = {"type": "postback", "data": data}
        if tap.display_text is not None:
            action["displayText"] = tap.display_text
    if area.label is not None:
        action["label"] = area.label
    return action


def menu_object(menu: RichMenuDoc) -> dict[str, Any]:
    """LINE's rich menu object (the body of `POST /v2/bot/richmenu`)."""
    width, height = menu.pixels
    return {
        "size": {"width": width, "height": height},
        "selected": menu.selected,
        "name": (menu.title or menu.rich_menu)[:300],
        "chatBarText": menu.chat_bar,
        "areas": [
            {
                "bounds": dict(zip(("x", "y", "width", "height"), area.bounds, strict=True)),
                "action": area_action(menu, index, area),
            }
            for index, area in enumerate(menu.areas)
        ],
    }


@dataclass(frozen=True)
class MenuImage:
    data: bytes
    content_type: str
    rendered: bool  # drawn from the labels (no `image:` in the YAML)


def menu_image(menu: RichMenuDoc, folder: Path | None) -> MenuImage:
    """The menu's image: its file, or one drawn from the area labels."""
    if menu.image is not None:
        if folder is None:
            raise ValueError(f"rich menu '{menu.rich_menu}': no flows folder to find its image")
        from bot.richmenus.images import inspect_image

        data = (Path(folder) / menu.image).read_bytes()
        return MenuImage(data, inspect_image(data).content_type, rendered=False)
    from bot.richmenus.render import render_menu

    width, height = menu.pixels
    return MenuImage(render_menu(width, height, labelled_areas(menu)), "image/png", rendered=True)


def labelled_areas(menu: RichMenuDoc) -> list[Any]:
    from bot.richmenus.render import LabelledArea

    return [
        LabelledArea(*area.bounds, label=area.label or "")
        for area in menu.areas
        if area.label is not None
    ]


def content_hash(menu: RichMenuDoc, folder: Path | None) -> str:
    """Names one version of a menu at LINE: its menu object and its image. A drawn image is
    hashed by what it is drawn from (labels, size, renderer version), not its bytes, so a
    new Pillow does not re-create every menu."""
    from bot.richmenus.render import RENDERER_VERSION

    digest = hashlib.sha256(json.dumps(menu_object(menu), sort_keys=True).encode())
    if menu.image is not None and folder is not None:
        digest.update(b"image:" + (Path(folder) / menu.image).read_bytes())
    else:
        labels = [[*area.bounds, area.label] for area in menu.areas]
        digest.update(f"rendered:{RENDERER_VERSION}:{json.dumps(labels)}".encode())
    return digest.hexdigest()
