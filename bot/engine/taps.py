"""What a tap on a rich menu area does when its postback arrives: the area's `do` actions,
with the picked date/time saved first for a `datetime` area."""

from __future__ import annotations

import logging
from typing import Any

from bot.catalogue import Catalogue
from bot.catalogue.models import PickerSpec, RichMenuArea
from bot.catalogue.richmenu_definition import TapRef, tap_digest
from bot.engine.actions import run_actions, set_field
from bot.engine.fields import InvalidValue
from bot.engine.turn import Turn

log = logging.getLogger(__name__)


def on_menu_tap(turn: Turn, data: str, params: dict[str, Any] | None) -> None:
    """A postback carrying `rm1|<menu>|<area>|<digest>`: run that area's tap. An area the
    catalogue no longer has, or that does something else now (a menu version still on the
    phone before `stepline richmenu sync` re-linked it), is logged and ignored."""
    ref = TapRef.parse(data)
    menu = turn.catalogue.rich_menus.get(ref.menu) if ref is not None else None
    if (
        ref is None
        or menu is None
        or ref.index >= len(menu.areas)
        or tap_digest(menu.areas[ref.index]) != ref.digest
    ):
        log.info("%s: rich menu postback %r is not in the catalogue; ignored", turn.cause, data)
        return
    status = (params or {}).get("status")
    if status is not None and status != "SUCCESS":  # LINE omits the alias when it failed
        log.info("%s: rich menu switch failed at LINE (%s)", turn.cause, status)
    run_tap(turn, menu.areas[ref.index], params, f"richmenu:{ref.menu}:{ref.index + 1}")


def run_tap(
    turn: Turn, area: RichMenuArea, params: dict[str, Any] | None, reason: str = "richmenu"
) -> None:
    tap = area.tap
    if tap.datetime is not None and tap.save is not None:
        mode = tap.datetime.mode if isinstance(tap.datetime, PickerSpec) else tap.datetime
        picked = (params or {}).get(mode)
        if picked is None:
            log.info("%s: %s picker postback without a %s; nothing saved", reason, mode, mode)
        else:
            try:
                set_field(turn, tap.save, picked)
            except InvalidValue as exc:
                log.warning("%s: picked %r not saved in %s: %s", reason, picked, tap.save, exc)
    run_actions(turn, tap.do, reason)


def taps_with_data(catalogue: Catalogue, data: str) -> list[RichMenuArea]:
    """Areas whose tap sends this raw `postback` data and also has `do` actions."""
    return [
        area
        for menu in catalogue.rich_menus.values()
        for area in menu.areas
        if area.tap.postback == data and area.tap.do
    ]
