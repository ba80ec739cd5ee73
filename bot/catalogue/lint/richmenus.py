"""Lint of `rich_menu:` documents: areas, taps, aliases, images, and the default menu.

Called by `Linter.run` with the linter itself, so problems are reported the same way (at the
YAML node, `file:line:col`) and actions and conditions are checked by the same code as
everywhere else.
"""

from __future__ import annotations

from pathlib import Path

from bot.catalogue.explain import article, suggest
from bot.catalogue.lint.base import LinterBase
from bot.catalogue.models import PICKER_FITS, PickerSpec, RichMenuArea, RichMenuDoc
from bot.catalogue.source import Document, Locator, PathItem
from bot.catalogue.templates import contains_template

MAX_AREAS = 20  # LINE's limit of tappable areas per rich menu


def lint_rich_menus(linter: LinterBase, documents: list[Document]) -> None:
    """Every rich menu document, then what holds across menus (aliases, default)."""
    menus = [(doc, doc.model) for doc in documents if isinstance(doc.model, RichMenuDoc)]
    aliases: dict[str, str] = {}
    for doc, menu in menus:
        assert isinstance(menu, RichMenuDoc)
        if menu.alias is None:
            continue
        if menu.alias in aliases:
            linter.report(
                doc.locator,
                ["alias"],
                f"alias '{menu.alias}' is already used by rich menu '{aliases[menu.alias]}'",
            )
        else:
            aliases[menu.alias] = menu.rich_menu
    defaults: list[str] = []
    for doc, menu in menus:
        assert isinstance(menu, RichMenuDoc)
        if menu.default:
            if defaults:
                linter.report(
                    doc.locator,
                    ["default"],
                    f"rich menu '{defaults[0]}' is already the default; only one menu can be",
                )
            defaults.append(menu.rich_menu)
        _menu(linter, doc.locator, menu, aliases, linter.catalogue.folder)


def _menu(
    linter: LinterBase,
    loc: Locator,
    menu: RichMenuDoc,
    aliases: dict[str, str],
    folder: Path | None,
) -> None:
    width, height = menu.pixels
    if menu.show_when is not None:
        linter.condition(loc, ["show_when"], menu.show_when)
    if len(menu.areas) > MAX_AREAS:
        linter.report(
            loc,
            ["areas", MAX_AREAS],
            f"rich menu '{menu.rich_menu}' has {len(menu.areas)} areas; LINE allows at most"
            f" {MAX_AREAS}",
        )
    for index, area in enumerate(menu.areas):
        path: list[PathItem] = ["areas", index]
        if loc.complete:  # not the default size, if `size` was left out
            _bounds(linter, loc, path, area, width, height)
        _tap(linter, loc, [*path, "tap"], area, aliases)
        for other in range(index):
            if _overlap(menu.areas[other], area):
                linter.report(
                    loc,
                    [*path, "bounds"],
                    f"area {loc.number(path)} overlaps area {loc.number(['areas', other])}"
                    f" ({_show(menu.areas[other].bounds)}); a tap there would be ambiguous",
                )
    if menu.image is not None:
        _image(linter, loc, menu, folder)
    elif loc.complete:  # no image, rather than one left out (or misspelt)
        _labels(linter, loc, menu)


def _bounds(
    linter: LinterBase,
    loc: Locator,
    path: list[PathItem],
    area: RichMenuArea,
    width: int,
    height: int,
) -> None:
    x, y, w, h = area.bounds
    if x + w > width or y + h > height:
        linter.report(
            loc,
            [*path, "bounds"],
            f"area {_show(area.bounds)} reaches outside the {width}×{height} menu"
            f" (right edge {x + w}, bottom edge {y + h})",
        )


def _overlap(a: RichMenuArea, b: RichMenuArea) -> bool:
    ax, ay, aw, ah = a.bounds
    bx, by, bw, bh = b.bounds
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _show(bounds: tuple[int, int, int, int]) -> str:
    return "[" + ", ".join(str(v) for v in bounds) + "]"


def _tap(
    linter: LinterBase,
    loc: Locator,
    path: list[PathItem],
    area: RichMenuArea,
    aliases: dict[str, str],
) -> None:
    tap = area.tap
    linter.actions(loc, [*path, "do"], tap.do)
    if (
        tap.switch is not None
        and tap.switch not in aliases
        and not linter.elsewhere("alias", tap.switch)
    ):
        hint = suggest(tap.switch, sorted(aliases))
        linter.report(
            loc,
            [*path, "switch"],
            f"unknown rich menu alias '{tap.switch}'{hint or ' (give a menu `alias:` first)'}",
        )
    if tap.postback is not None:
        linter.data(loc, [*path, "postback"], tap.postback)
    if tap.display_text is not None and contains_template(tap.display_text):
        linter.report(
            loc,
            [*path, "display_text"],
            "display_text is shown as written: a rich menu is the same for every friend,"
            " so templates are not filled in here",
        )
    if tap.datetime is not None and tap.save is not None:
        mode = tap.datetime.mode if isinstance(tap.datetime, PickerSpec) else tap.datetime
        definition = linter.field(loc, [*path, "save"], tap.save)
        if definition is not None and definition.type not in PICKER_FITS[mode]:
            linter.report(
                loc,
                [*path, "save"],
                f"field '{tap.save}' is {article(definition.type)} field; it cannot hold the {mode}"
                " picked here",
            )


def _image(linter: LinterBase, loc: Locator, menu: RichMenuDoc, folder: Path | None) -> None:
    """The image file exists and is what LINE accepts for this menu's size."""
    from bot.richmenus.images import image_problems

    if folder is None or menu.image is None:
        return
    path = Path(folder) / menu.image
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        linter.report(loc, ["image"], f"image file not found: {path}")
        return
    except OSError as exc:
        linter.report(loc, ["image"], f"cannot read image {path}: {exc.strerror or exc}")
        return
    for problem in image_problems(data, expected_size=menu.pixels):
        linter.report(loc, ["image"], f"image {menu.image}: {problem}")


def _labels(linter: LinterBase, loc: Locator, menu: RichMenuDoc) -> None:
    """Without an image the menu is drawn from the labels: each area needs one, drawable."""
    from bot.richmenus.render import missing_glyphs

    for index, area in enumerate(menu.areas):
        if area.label is None:
            linter.report(
                loc,
                ["areas", index],
                f"area {loc.number(['areas', index])} has no label and the menu has no image:"
                " give it a `label`"
                " (drawn by `stepline richmenu render`) or give the menu an `image`",
            )
            continue
        missing = missing_glyphs(area.label)
        if missing:
            linter.report(
                loc,
                ["areas", index, "label"],
                f"label '{area.label}' uses characters the bundled font cannot draw:"
                f" {' '.join(sorted(missing))} (give the menu an `image` instead)",
            )
