"""Rich menus as LINE keeps them for one channel: the menus and their images, the default,
per-user links, aliases, and what a user sees after tapping a rich menu switch action.

Plain data without a lock of its own: it lives in the `EmulatorStore`'s state (so `reset`
forgets it) and is only reached through `EmulatorStore.rich_menus()`, which holds the store's
lock for the caller. What leaves it is a copy, never the live object.

What LINE documents and this follows:
- a user sees, in order: the menu the user switched to with a rich menu switch action (until
  the user's link or the default changes, which LINE applies at once), the per-user link, the
  default set with the Messaging API;
- deleting a menu removes it from the users linked to it and from the default; aliases that
  point to it stay (LINE's `RICHMENU_NOTFOUND` switch status exists for exactly that case:
  "the rich menu ID associated with the specified rich menu alias ID was not found").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.emulator.ids import rich_menu_id

Source = Literal["user", "default", "switched"]
SwitchStatus = Literal["SUCCESS", "RICHMENU_ALIAS_ID_NOTFOUND", "RICHMENU_NOTFOUND"]


@dataclass
class RichMenu:
    """One rich menu: the rich menu object as created, and its image once uploaded."""

    rich_menu_id: str
    size: dict[str, int]
    selected: bool
    name: str
    chat_bar_text: str
    areas: list[dict[str, Any]]
    created_at: datetime
    image: bytes | None = None
    image_type: str | None = None

    @classmethod
    def from_request(cls, menu_id: str, body: dict[str, Any], now: datetime) -> RichMenu:
        """From a validated `RichMenuRequest` body."""
        return cls(
            rich_menu_id=menu_id,
            size={"width": body["size"]["width"], "height": body["size"]["height"]},
            selected=bool(body["selected"]),
            name=body["name"],
            chat_bar_text=body["chatBarText"],
            areas=copy.deepcopy(body["areas"]),
            created_at=now,
        )

    def area_label(self, data: str, alias_id: str | None = None) -> str | None:
        """The `label` of the first area whose action posts `data` (a postback or date picker;
        with `alias_id`, a switch to that alias), for the simulator's timeline; None when no
        area does or it has no label."""
        for area in self.areas:
            action = area.get("action")
            if not isinstance(action, dict) or action.get("data") != data:
                continue
            if alias_id is None and action.get("type") not in ("postback", "datetimepicker"):
                continue
            if alias_id is not None and (
                action.get("type") != "richmenuswitch" or action.get("richMenuAliasId") != alias_id
            ):
                continue
            label = action.get("label")
            return label if isinstance(label, str) and label else None
        return None

    def to_json(self) -> dict[str, Any]:
        """The spec's `RichMenuResponse`."""
        return {
            "richMenuId": self.rich_menu_id,
            "size": dict(self.size),
            "selected": self.selected,
            "name": self.name,
            "chatBarText": self.chat_bar_text,
            "areas": copy.deepcopy(self.areas),
        }


@dataclass(frozen=True)
class Shown:
    """The menu a user sees now, and why (`source`); `alias_id` when switched to."""

    menu: RichMenu
    source: Source
    alias_id: str | None = None


@dataclass(frozen=True)
class BulkRequest:
    """One accepted bulk link/unlink: how many users it named and how many it changed."""

    request_id: str
    path: str
    rich_menu_id: str | None
    user_count: int
    applied: int
    at: datetime


@dataclass
class RichMenuState:
    menus: dict[str, RichMenu] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias id → rich menu id
    default_id: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # user id → rich menu id
    switched: dict[str, tuple[str, str]] = field(default_factory=dict)  # user → (alias, menu)
    bulk: list[BulkRequest] = field(default_factory=list)

    # --- menus ------------------------------------------------------------------------------

    def create(self, body: dict[str, Any], now: datetime) -> RichMenu:
        menu_id = rich_menu_id()
        while menu_id in self.menus:
            menu_id = rich_menu_id()
        menu = RichMenu.from_request(menu_id, body, now)
        self.menus[menu_id] = menu
        return copy.deepcopy(menu)

    def menu(self, menu_id: str) -> RichMenu | None:
        found = self.menus.get(menu_id)
        return copy.deepcopy(found) if found else None

    def all(self) -> list[RichMenu]:
        return [copy.deepcopy(menu) for menu in self.menus.values()]

    def delete(self, menu_id: str) -> bool:
        """Remove a menu, its per-user links, the default if it was, and switched displays of
        it; its aliases stay (a switch to them then finds no menu)."""
        if self.menus.pop(menu_id, None) is None:
            return False
        self.links = {uid: mid for uid, mid in self.links.items() if mid != menu_id}
        self.switched = {uid: pair for uid, pair in self.switched.items() if pair[1] != menu_id}
        if self.default_id == menu_id:
            self.default_id = None
        return True

    def set_image(self, menu_id: str, data: bytes, content_type: str) -> None:
        menu = self.menus[menu_id]
        menu.image, menu.image_type = data, content_type

    def has_image(self, menu_id: str) -> bool:
        menu = self.menus.get(menu_id)
        return menu is not None and menu.image is not None

    # --- the default and per-user links -------------------------------------------------------

    def set_default(self, menu_id: str | None) -> None:
        """Set (or with None cancel) the default; every switched display is forgotten."""
        self.default_id = menu_id
        self.switched.clear()

    def link(self, user_id: str, menu_id: str) -> None:
        self.links[user_id] = menu_id
        self.switched.pop(user_id, None)

    def unlink(self, user_id: str) -> None:
        self.links.pop(user_id, None)
        self.switched.pop(user_id, None)

    def linked(self, user_id: str) -> str | None:
        return self.links.get(user_id)

    def linked_count(self, menu_id: str) -> int:
        return sum(1 for mid in self.links.values() if mid == menu_id)

    def record_bulk(self, entry: BulkRequest) -> None:
        self.bulk.append(entry)

    # --- aliases ------------------------------------------------------------------------------

    def alias(self, alias_id: str) -> str | None:
        return self.aliases.get(alias_id)

    def set_alias(self, alias_id: str, menu_id: str) -> None:
        self.aliases[alias_id] = menu_id

    def delete_alias(self, alias_id: str) -> bool:
        return self.aliases.pop(alias_id, None) is not None

    def alias_list(self) -> list[dict[str, str]]:
        """The spec's `RichMenuAliasResponse` for every alias, oldest first."""
        return [
            {"richMenuAliasId": alias_id, "richMenuId": menu_id}
            for alias_id, menu_id in self.aliases.items()
        ]

    def aliases_of(self, menu_id: str) -> list[str]:
        return [alias_id for alias_id, mid in self.aliases.items() if mid == menu_id]

    # --- what users see -----------------------------------------------------------------------

    def switch(self, user_id: str, alias_id: str) -> SwitchStatus:
        """A tap on a rich menu switch action: the user's display becomes the alias's menu."""
        menu_id = self.aliases.get(alias_id)
        if menu_id is None:
            return "RICHMENU_ALIAS_ID_NOTFOUND"
        if menu_id not in self.menus:
            return "RICHMENU_NOTFOUND"
        self.switched[user_id] = (alias_id, menu_id)
        return "SUCCESS"

    def shown(self, user_id: str) -> Shown | None:
        """The menu the user sees now: switched to, else linked, else the default."""
        switched = self.switched.get(user_id)
        if switched is not None and switched[1] in self.menus:
            return Shown(copy.deepcopy(self.menus[switched[1]]), "switched", switched[0])
        linked = self.links.get(user_id)
        if linked is not None and linked in self.menus:
            return Shown(copy.deepcopy(self.menus[linked]), "user")
        if self.default_id is not None and self.default_id in self.menus:
            return Shown(copy.deepcopy(self.menus[self.default_id]), "default")
        return None
