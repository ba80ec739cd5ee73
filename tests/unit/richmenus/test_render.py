"""Rendered rich menus: exact size, within LINE's limit, deterministic, real Japanese glyphs,
labels that stay inside their tiles, and a clear error for characters the font lacks."""

from __future__ import annotations

import io
from importlib import resources
from itertools import combinations

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops, ImageDraw

from bot.richmenus import render
from bot.richmenus.images import COMPACT, LARGE, MAX_IMAGE_BYTES, image_problems
from bot.richmenus.render import (
    FONT_FILE,
    RENDERER_VERSION,
    THEMES,
    LabelledArea,
    RenderError,
    load_font,
    missing_glyphs,
    render_menu,
)

JAPANESE_LABELS = ["予約する", "アンケート", "クーポン", "会員証"]
DEFAULT = THEMES["default"]

Box = tuple[int, int, int, int]


def grid(width: int, height: int, labels: list[str], columns: int = 3) -> list[LabelledArea]:
    """Areas laid out in a grid that covers the whole menu."""
    rows = -(-len(labels) // columns)
    areas = []
    for index, label in enumerate(labels):
        column, row = index % columns, index // columns
        x0, x1 = column * width // columns, (column + 1) * width // columns
        y0, y1 = row * height // rows, (row + 1) * height // rows
        areas.append(LabelledArea(x0, y0, x1 - x0, y1 - y0, label))
    return areas


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def crop(image: Image.Image, area: LabelledArea) -> Image.Image:
    return image.crop((area.x, area.y, area.x + area.width, area.y + area.height))


def ink_box(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 60) -> Box | None:
    """The bounding box of pixels close to colour (the text, anti-aliased edges included)."""
    reference = Image.new("RGB", image.size, colour)
    distance = ImageChops.difference(image, reference).convert("L")
    return distance.point(lambda value: 255 if value <= tolerance else 0).getbbox()


def changed_pixels(image: Image.Image, colour: tuple[int, int, int]) -> Box | None:
    """The bounding box of pixels that are not exactly colour."""
    return ImageChops.difference(image, Image.new("RGB", image.size, colour)).getbbox()


def text_rows(tile: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many separate horizontal bands of text the tile holds."""
    mask = ImageChops.difference(tile, Image.new("RGB", tile.size, colour)).convert("L")
    mask = mask.point(lambda value: 255 if value <= 60 else 0)
    inked = [mask.crop((0, y, tile.width, y + 1)).getbbox() is not None for y in range(tile.height)]
    return sum(1 for y, on in enumerate(inked) if on and (y == 0 or not inked[y - 1]))


# --- size, format, limit, determinism -------------------------------------------------------


@pytest.mark.parametrize("size", [LARGE, COMPACT, (1200, 810)], ids=["large", "compact", "custom"])
def test_png_of_the_exact_size_within_the_limit(size: tuple[int, int]) -> None:
    data = render_menu(*size, grid(*size, ["予約する", "アンケート", "クーポン", "会員証"], 2))
    assert open_png(data).size == size
    assert len(data) <= MAX_IMAGE_BYTES
    assert image_problems(data, expected_size=size) == []


def test_same_input_gives_identical_bytes() -> None:
    areas = grid(*LARGE, [*JAPANESE_LABELS, "営業時間・アクセス", "Contact us"])
    first = render_menu(*LARGE, areas)
    assert render_menu(*LARGE, list(areas)) == first
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt", b"eXIf"):  # no timestamps or metadata
        assert chunk not in first


def test_every_theme_renders() -> None:
    areas = grid(*COMPACT, JAPANESE_LABELS, 4)
    outputs = {name: render_menu(*COMPACT, areas, theme=name) for name in THEMES}
    assert len(set(outputs.values())) == len(THEMES)
    for data in outputs.values():
        assert image_problems(data, expected_size=COMPACT) == []


def test_an_unknown_theme_is_refused() -> None:
    with pytest.raises(RenderError, match="unknown theme 'neon': choose one of default"):
        render_menu(*LARGE, [], theme="neon")


def test_a_size_line_would_refuse_is_not_rendered() -> None:
    with pytest.raises(RenderError, match="width 700 px is below LINE's minimum"):
        render_menu(700, 400, [])


def test_an_area_without_size_is_refused() -> None:
    with pytest.raises(RenderError, match="has no size"):
        render_menu(*LARGE, [LabelledArea(0, 0, 0, 100, "予約")])


def test_renderer_version_is_a_positive_int() -> None:
    assert isinstance(RENDERER_VERSION, int)
    assert RENDERER_VERSION >= 1


# --- the encoder never goes over the limit --------------------------------------------------


def test_falls_back_to_a_palette_when_the_png_is_too_big(monkeypatch: pytest.MonkeyPatch) -> None:
    areas = grid(*LARGE, JAPANESE_LABELS, 2)
    full = render_menu(*LARGE, areas)
    monkeypatch.setattr(render, "MAX_IMAGE_BYTES", len(full) - 1)
    smaller = render_menu(*LARGE, areas)
    assert len(smaller) < len(full)
    image = Image.open(io.BytesIO(smaller))
    assert (image.mode, image.size) == ("P", LARGE)


def test_refuses_rather_than_exceeding_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(RenderError, match="does not fit in 100 bytes"):
        render_menu(*COMPACT, grid(*COMPACT, JAPANESE_LABELS, 4))


# --- Japanese is drawn with real glyphs -----------------------------------------------------


def draw_glyphs(text: str, size: int = 96) -> Image.Image:
    image = Image.new("L", (size * (len(text) + 1), size * 2), 0)
    ImageDraw.Draw(image).text((size // 2, size // 2), text, font=load_font(size), fill=255)
    return image


def test_japanese_labels_are_covered_by_the_font() -> None:
    for label in JAPANESE_LABELS:
        assert missing_glyphs(label) == set()


def test_each_character_differs_from_the_notdef_box() -> None:
    notdef = draw_glyphs("\ue000")  # private use: not in the font, so .notdef is drawn
    assert notdef.getbbox() is not None  # .notdef is a visible box, so the test means something
    for char in sorted(set("".join(JAPANESE_LABELS))):
        glyph = draw_glyphs(char)
        assert glyph.getbbox() is not None, char
        assert ImageChops.difference(glyph, notdef).getbbox() is not None, char


def test_different_labels_give_different_tiles() -> None:
    area = LabelledArea(0, 0, 833, 843, "")
    tiles = {
        label: crop(open_png(render_menu(*LARGE, [LabelledArea(0, 0, 833, 843, label)])), area)
        for label in JAPANESE_LABELS
    }
    for label, tile in tiles.items():
        assert ink_box(tile, DEFAULT.text) is not None, label
    for first, second in combinations(JAPANESE_LABELS, 2):
        assert ImageChops.difference(tiles[first], tiles[second]).getbbox() is not None


def test_labels_are_centred_in_their_tiles() -> None:
    area = LabelledArea(0, 0, 833, 843, "会員証")
    box = ink_box(crop(open_png(render_menu(*LARGE, [area])), area), DEFAULT.text)
    assert box is not None
    left, top, right, bottom = box
    assert abs((left + right) / 2 - area.width / 2) < area.width * 0.03
    assert abs((top + bottom) / 2 - area.height / 2) < area.height * 0.05


# --- labels stay inside their tiles ---------------------------------------------------------

LONG_LABEL = "オンライン予約はこちらから（24時間いつでも受付しています）"


def test_a_long_label_is_wrapped_inside_its_tile() -> None:
    area = LabelledArea(900, 500, 600, 500, LONG_LABEL)
    image = open_png(render_menu(*LARGE, [area]))
    tile = crop(image, area)
    box = ink_box(tile, DEFAULT.text)
    assert box is not None
    assert text_rows(tile, DEFAULT.text) >= 2
    # Nothing outside the tile changed: the rest of the menu is the plain background.
    outside = image.copy()
    outside.paste(DEFAULT.background, (area.x, area.y, area.x + area.width, area.y + area.height))
    assert changed_pixels(outside, DEFAULT.background) is None


def test_a_long_label_does_not_reach_a_neighbouring_tile() -> None:
    left = LabelledArea(0, 0, 1250, 843, "")
    middle = LabelledArea(1250, 0, 400, 843, LONG_LABEL + LONG_LABEL)
    right = LabelledArea(1650, 0, 850, 843, "")
    image = open_png(render_menu(*COMPACT, [left, middle, right]))
    for neighbour, fill in ((left, DEFAULT.tiles[0]), (right, DEFAULT.tiles[2])):
        tile = crop(image, neighbour)
        assert ink_box(tile, DEFAULT.text) is None
        # Only the separator on the shared edge differs from the tile's colour.
        changed = changed_pixels(tile, fill)
        assert changed is not None
        assert changed[2] - changed[0] <= 5


def test_a_long_latin_word_stays_inside_a_narrow_tile() -> None:
    area = LabelledArea(1000, 200, 300, 400, "Supercalifragilisticexpialidocious")
    image = open_png(render_menu(*LARGE, [area]))
    outside = image.copy()
    outside.paste(DEFAULT.background, (area.x, area.y, area.x + area.width, area.y + area.height))
    assert changed_pixels(outside, DEFAULT.background) is None
    assert ink_box(crop(image, area), DEFAULT.text) is not None


def test_latin_words_are_not_broken_when_they_fit() -> None:
    block = render._fit("Online reservation available", None, 500, 600, 120)
    assert block.lines == ("Online", "reservation", "available")
    assert not block.broke_word


def test_japanese_wraps_between_phrases_and_respects_kinsoku() -> None:
    block = render._fit("営業時間・アクセス", None, 666, 600, 120)
    assert block.lines == ("営業時間", "アクセス")
    narrow = render._fit("ご予約は、こちらから。", None, 200, 600, 120)
    for line in narrow.lines[1:]:
        assert line[0] not in "、。"


def test_an_explicit_line_break_is_kept() -> None:
    block = render._fit("会員証\nを見せる", None, 800, 800, 100)
    assert block.lines == ("会員証", "を見せる")


# --- missing characters ---------------------------------------------------------------------


def test_a_character_missing_from_the_font_is_named() -> None:
    assert missing_glyphs("予約🍣する") == {"🍣"}
    area = LabelledArea(0, 0, 1250, 843, "予約🍣する")
    with pytest.raises(RenderError) as error:
        render_menu(*COMPACT, [area])
    message = str(error.value)
    assert "'予約🍣する'" in message
    assert "characters the bundled font lacks" in message
    assert "'🍣' (U+1F363)" in message


def test_a_missing_character_in_the_icon_is_refused_too() -> None:
    with pytest.raises(RenderError) as error:
        render_menu(*COMPACT, [LabelledArea(0, 0, 1250, 843, "予約", icon="😀")])
    assert str(error.value) == (
        "label '予約' (icon '😀') uses characters the bundled font lacks: '😀' (U+1F600)"
    )


def test_missing_glyphs_agrees_with_the_font_cmap() -> None:
    font_file = resources.files("bot.richmenus").joinpath("fonts", FONT_FILE)
    with resources.as_file(font_file) as path:
        cmap = set(TTFont(path).getBestCmap())
    every_bmp_char = "".join(chr(code) for code in range(0x10000) if code != 0x0A)
    covered = {ord(char) for char in every_bmp_char} - {
        ord(c) for c in missing_glyphs(every_bmp_char)
    }
    assert covered == cmap


def test_the_font_covers_kana_symbols_and_jis_kanji() -> None:
    samples = "あアｱ！Ａ→★●○♪✓①㈱〒※〜ー々髙﨑鬱彙" + "".join(map(chr, range(0x20, 0x7F)))
    assert missing_glyphs(samples) == set()


def test_the_bundled_font_is_small_and_licensed() -> None:
    fonts = resources.files("bot.richmenus").joinpath("fonts")
    assert len(fonts.joinpath(FONT_FILE).read_bytes()) < 3_000_000
    assert "SIL OPEN FONT LICENSE Version 1.1" in fonts.joinpath("OFL.txt").read_text()
    assert "tools/subset_font.py" in fonts.joinpath("README.md").read_text()


# --- areas that leave gaps ------------------------------------------------------------------


def test_areas_that_leave_gaps_are_fine() -> None:
    areas = [
        LabelledArea(0, 0, 800, 843, "予約する"),
        LabelledArea(1700, 0, 800, 843, "クーポン"),
    ]
    image = open_png(render_menu(*COMPACT, areas))
    gap = image.crop((800, 0, 1700, 843))
    assert changed_pixels(gap, DEFAULT.background) is None
    assert ink_box(crop(image, areas[0]), DEFAULT.text) is not None


def test_no_areas_gives_a_plain_background() -> None:
    image = open_png(render_menu(*LARGE, []))
    assert changed_pixels(image, DEFAULT.background) is None
