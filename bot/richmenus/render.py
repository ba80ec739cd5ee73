"""Draw a clean rich menu image from the areas' labels, so a business can start without a
designer: each area is a softly coloured tile with thin separators and its label centred,
sized to fill the tile and wrapped (between Latin words, and between Japanese phrases or else
characters, with kinsoku) so it never leaves the tile.

Text is drawn with a bundled subset of Noto Sans CJK JP Bold (fonts/README.md) and Pillow's
basic layout, so whether libraqm is installed does not change the output; the PNG carries no
metadata, so the same input gives the same bytes.
A label with a character the font lacks is refused (RenderError) rather than drawn as tofu.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.richmenus.images import MAX_IMAGE_BYTES, menu_size_problems

# Bump whenever the pixels for a given input change (layout, colours, font, Pillow options):
# callers hash it with the input to know when a rendered image must be uploaded again.
RENDERER_VERSION: int = 2

FONT_FILE = "NotoSansJP-Bold-subset.otf"

# Layout, as fractions of the tile or of the font size.
_PADDING_X = 0.10  # of the tile width, each side
_PADDING_Y = 0.14  # of the tile height, each side
_MAX_TEXT_HEIGHT = 0.17  # a label's font size is at most this share of its tile's height...
_MAX_TEXT_OF_MENU = 0.048  # ...and of the menu's width, so a big tile does not shout
# A short, wide tile (a tab bar) may use more of its height, up to this share of it and this
# share of the menu's width: else a tab's label would be a whisper.
_SHORT_TILE_TEXT = 0.4
_SHORT_TILE_OF_MENU = 0.032
_MIN_FONT_SIZE = 8
_LINE_GAP = 0.28  # between lines, of the font size
_ICON_SCALE = 0.9  # the icon line's size, of the label's
# Breaking only between Japanese phrases reads better; it wins while its text is at least
# this share of the size that breaking anywhere would allow.
_PHRASE_SHRINK = 0.6
_SEPARATOR = 1 / 500  # separator thickness, of the menu's width
# Noto CJK's ideographic em box runs from 0.88 em above the baseline to 0.12 em below it;
# centring that box (not the ink) keeps labels of different glyphs on one optical line.
_EM_ASCENT = 0.88

# Japanese line breaking (kinsoku): these never start a line.
_NO_LINE_START = frozenset(
    "、。，．,.・：；:;？！?!ー－–—〜～）」』】〕〉》］｝)]}"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ々ゝゞヽヾ"
)
# ...and these never end one.
_NO_LINE_END = frozenset("（「『【〔〈《［｛([{")


class RenderError(ValueError):
    """The menu cannot be drawn as asked (bad size, unknown theme, characters the font lacks)."""


@dataclass(frozen=True)
class LabelledArea:
    """A tappable area and its text; `icon` is an optional short line above the label (★, →)."""

    x: int
    y: int
    width: int
    height: int
    label: str
    icon: str | None = None


@dataclass(frozen=True)
class Theme:
    background: tuple[int, int, int]  # the parts of the menu no area covers
    tiles: tuple[tuple[int, int, int], ...]  # area i gets tiles[i % len(tiles)]
    separator: tuple[int, int, int]
    text: tuple[int, int, int]
    icon: tuple[int, int, int]


THEMES: dict[str, Theme] = {
    "default": Theme(
        background=(0xF3, 0xF4, 0xF6),
        tiles=(
            (0xE3, 0xF4, 0xEA),  # mint
            (0xE4, 0xEE, 0xFA),  # sky
            (0xFD, 0xF1, 0xDE),  # sand
            (0xFB, 0xE7, 0xEA),  # blush
            (0xEE, 0xE9, 0xF8),  # lavender
            (0xE2, 0xF3, 0xF3),  # aqua
        ),
        separator=(0xFF, 0xFF, 0xFF),
        text=(0x26, 0x35, 0x3F),
        icon=(0x06, 0x9E, 0x4A),
    ),
    "green": Theme(  # LINE's brand green, white text
        background=(0x04, 0x8A, 0x40),
        tiles=((0x06, 0xC7, 0x55), (0x05, 0xB3, 0x4C), (0x07, 0xBD, 0x51)),
        separator=(0xFF, 0xFF, 0xFF),
        text=(0xFF, 0xFF, 0xFF),
        icon=(0xE8, 0xFF, 0xEF),
    ),
    "dark": Theme(
        background=(0x1B, 0x22, 0x2B),
        tiles=((0x27, 0x32, 0x3F), (0x2C, 0x38, 0x46), (0x23, 0x2D, 0x39)),
        separator=(0x12, 0x17, 0x1D),
        text=(0xF5, 0xF7, 0xFA),
        icon=(0xF2, 0xC1, 0x4E),
    ),
}


@dataclass(frozen=True)
class _Block:
    """The lines to draw in one tile at one font size."""

    size: int
    icon: str | None
    lines: tuple[str, ...]
    broke_word: bool  # a word or phrase had to be split across lines


def render_menu(
    width: int, height: int, areas: Sequence[LabelledArea], *, theme: str = "default"
) -> bytes:
    """A PNG of exactly width × height px, at most MAX_IMAGE_BYTES, identical for equal input."""
    _check_request(width, height, areas, theme)
    palette = THEMES[theme]
    canvas = Image.new("RGB", (width, height), palette.background)
    separator = max(2, round(width * _SEPARATOR))
    for index, area in enumerate(areas):
        tile = _draw_tile(area, palette.tiles[index % len(palette.tiles)], palette, width)
        _paste_tile(canvas, tile, area, palette.separator, separator)
    return _encode_png(canvas)


def missing_glyphs(text: str) -> set[str]:
    """The characters of text the bundled font cannot draw (line breaks are allowed)."""
    covered = _font_codepoints()
    return {char for char in text if char != "\n" and ord(char) not in covered}


def load_font(size: int) -> ImageFont.FreeTypeFont:
    """The bundled font at size px, with the layout engine the renderer uses."""
    return _font(size)


def _check_request(width: int, height: int, areas: Sequence[LabelledArea], theme: str) -> None:
    if theme not in THEMES:
        raise RenderError(f"unknown theme {theme!r}: choose one of {', '.join(THEMES)}")
    problems = menu_size_problems(width, height)
    if problems:
        raise RenderError(f"cannot render a {width}×{height} menu: {'; '.join(problems)}")
    for area in areas:
        if area.width <= 0 or area.height <= 0:
            raise RenderError(f"area {area.label!r} has no size ({area.width}×{area.height})")
        missing = missing_glyphs(area.label + (area.icon or ""))
        if missing:
            icon = f" (icon {area.icon!r})" if area.icon else ""
            raise RenderError(
                f"label {area.label!r}{icon} uses characters the bundled font lacks: "
                f"{_describe_chars(missing)}"
            )


def _describe_chars(chars: set[str]) -> str:
    return ", ".join(f"{char!r} (U+{ord(char):04X})" for char in sorted(chars))


# ---------------------------------------------------------------------------------------------
# Drawing


def _draw_tile(
    area: LabelledArea, fill: tuple[int, int, int], palette: Theme, menu_width: int
) -> Image.Image:
    """The tile on its own image, so nothing drawn for it can reach a neighbour."""
    tile = Image.new("RGB", (area.width, area.height), fill)
    box_width = max(1, round(area.width * (1 - 2 * _PADDING_X)))
    box_height = max(1, round(area.height * (1 - 2 * _PADDING_Y)))
    short_tile = min(area.height * _SHORT_TILE_TEXT, menu_width * _SHORT_TILE_OF_MENU)
    max_size = min(max(area.height * _MAX_TEXT_HEIGHT, short_tile), menu_width * _MAX_TEXT_OF_MENU)
    block = _fit(area.label, area.icon, box_width, box_height, max(_MIN_FONT_SIZE, int(max_size)))
    _draw_block(ImageDraw.Draw(tile), block, area.width, area.height, palette)
    return tile


def _paste_tile(
    canvas: Image.Image,
    tile: Image.Image,
    area: LabelledArea,
    colour: tuple[int, int, int],
    thickness: int,
) -> None:
    """Paste the tile (clipped to the menu) and draw its share of the separators: the
    left/top half on its left/top edge and the rest on its right/bottom edge, so two tiles
    meeting at an edge make one full line. Edges on the menu's border get none."""
    canvas.paste(tile, (area.x, area.y))
    before, after = thickness // 2, thickness - thickness // 2
    left, top = area.x, area.y
    right, bottom = area.x + area.width, area.y + area.height
    strips = []
    if left > 0:
        strips.append((left, top, left + before, bottom))
    if top > 0:
        strips.append((left, top, right, top + before))
    if right < canvas.width:
        strips.append((right - after, top, right, bottom))
    if bottom < canvas.height:
        strips.append((left, bottom - after, right, bottom))
    draw = ImageDraw.Draw(canvas)
    for x0, y0, x1, y1 in strips:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)  # Pillow includes the end


def _draw_block(
    draw: ImageDraw.ImageDraw, block: _Block, width: int, height: int, palette: Theme
) -> None:
    """Centre the icon line and the label lines in the tile, one em box per line."""
    rows = _rows(block)
    if not rows:
        return
    total = sum(size for _, size, _ in rows) + _LINE_GAP * block.size * (len(rows) - 1)
    top = (height - total) / 2
    for text, size, is_icon in rows:
        baseline = top + size * _EM_ASCENT
        fill = palette.icon if is_icon else palette.text
        draw.text((width / 2, baseline), text, font=_font(size), fill=fill, anchor="ms")
        top += size + _LINE_GAP * block.size


def _rows(block: _Block) -> list[tuple[str, int, bool]]:
    """(text, font size, is the icon) for each line of the block, top to bottom."""
    rows = [(line, block.size, False) for line in block.lines]
    if block.icon:
        rows.insert(0, (block.icon, _icon_size(block.size), True))
    return rows


def _icon_size(size: int) -> int:
    return max(_MIN_FONT_SIZE, round(size * _ICON_SCALE))


# ---------------------------------------------------------------------------------------------
# Fitting the label: the largest size whose wrapped lines fit the box


def _fit(label: str, icon: str | None, box_width: int, box_height: int, max_size: int) -> _Block:
    """The largest size that fits, preferring line breaks between Japanese phrases (友だち|紹介)
    over breaks between any two characters, and never breaking a Latin word unless nothing
    else fits even at the smallest size."""
    icon = icon.strip() if icon and icon.strip() else None
    box = (box_width, box_height)
    by_phrase = _largest(label, icon, box, max_size, phrases=True, allow_broken=False)
    by_char = _largest(label, icon, box, max_size, phrases=False, allow_broken=False)
    if by_phrase and (not by_char or by_phrase.size >= _PHRASE_SHRINK * by_char.size):
        return by_phrase
    if by_char:
        return by_char
    forced = _largest(label, icon, box, max_size, phrases=False, allow_broken=True)
    return forced or _layout(label, icon, _MIN_FONT_SIZE, box_width, phrases=False)


def _largest(
    label: str,
    icon: str | None,
    box: tuple[int, int],
    max_size: int,
    *,
    phrases: bool,
    allow_broken: bool,
) -> _Block | None:
    """Binary search over font sizes; None when not even the smallest fits."""
    best = None
    low, high = _MIN_FONT_SIZE, max_size
    while low <= high:
        size = (low + high) // 2
        block = _layout(label, icon, size, box[0], phrases=phrases)
        if _fits(block, *box) and (allow_broken or not block.broke_word):
            best, low = block, size + 1
        else:
            high = size - 1
    return best


def _layout(label: str, icon: str | None, size: int, box_width: int, *, phrases: bool) -> _Block:
    lines, broke_word = _balance(label, _font(size), box_width, phrases=phrases)
    return _Block(size=size, icon=icon, lines=tuple(lines), broke_word=broke_word)


def _fits(block: _Block, box_width: int, box_height: int) -> bool:
    rows = _rows(block)
    if not rows:
        return True
    height = sum(size for _, size, _ in rows) + _LINE_GAP * block.size * (len(rows) - 1)
    widest = max(_font(size).getlength(text) for text, size, _ in rows)
    return height <= box_height and widest <= box_width


def _balance(
    label: str, font: ImageFont.FreeTypeFont, box_width: int, *, phrases: bool
) -> tuple[list[str], bool]:
    """Wrap to the fewest lines, then narrow the width so the lines come out even."""
    lines, broke = _wrap(label, font, box_width, phrases=phrases)
    if len(lines) < 2:
        return lines, broke
    low, high = 1, box_width
    while low < high:  # the narrowest width that needs no more lines and breaks no more words
        middle = (low + high) // 2
        narrower, narrower_broke = _wrap(label, font, middle, phrases=phrases)
        if len(narrower) <= len(lines) and narrower_broke <= broke:
            high = middle
        else:
            low = middle + 1
    return _wrap(label, font, high, phrases=phrases)


def _wrap(
    label: str, font: ImageFont.FreeTypeFont, width: float, *, phrases: bool
) -> tuple[list[str], bool]:
    """Greedy wrap of each paragraph; also says whether a token had to be broken."""
    lines: list[str] = []
    broke = False
    for paragraph in label.split("\n"):
        tokens = _glue(_tokens(paragraph.strip(), phrases=phrases))
        paragraph_lines, paragraph_broke = _wrap_tokens(tokens, font, width)
        lines.extend(paragraph_lines)
        broke = broke or paragraph_broke
    return [line for line in lines if line], broke


def _wrap_tokens(
    tokens: list[str], font: ImageFont.FreeTypeFont, width: float
) -> tuple[list[str], bool]:
    lines: list[str] = []
    current = ""
    broke = False
    while tokens:
        token = tokens.pop(0)
        if len(token) > 1 and font.getlength(token.strip()) > width:
            tokens[:0] = list(token)  # wider than a whole line: break it anywhere
            broke = True
            continue
        if not current or font.getlength((current + token).rstrip()) <= width:
            current += token
        else:
            lines.append(current.strip().rstrip("・･"))  # a break replaces a middle dot
            current = token.lstrip()
    lines.append(current.strip())
    return lines, broke


def _tokens(text: str, *, phrases: bool) -> Iterator[str]:
    """Units that stay on one line: Latin words (with a trailing space), and either single
    characters or, with phrases, runs of kanji or katakana with the hiragana after them."""
    token, kind = "", ""
    for char in text:
        char_kind = _kind(char, kind)
        if token and _joins(kind, char_kind, phrases=phrases):
            token += char
        else:
            if token:
                yield token
            token = char
        kind = char_kind
    if token:
        yield token


def _glue(tokens: Iterator[str]) -> list[str]:
    """Attach kinsoku characters: 、。ー」… to the token before, 「（… to the token after."""
    glued: list[str] = []
    opening = ""
    for token in tokens:
        token = opening + token
        opening = ""
        if all(char in _NO_LINE_END for char in token):
            opening = token
        elif glued and token[0] in _NO_LINE_START:
            glued[-1] += token
        else:
            glued.append(token)
    if opening:
        glued.append(opening)
    return glued


def _kind(char: str, previous: str) -> str:
    """A coarse script class for line breaking."""
    if char.isspace():
        return "space"
    if _is_word_char(char):
        return "latin"
    if char in "ーｰ" and previous in ("hiragana", "katakana"):
        return previous  # the long vowel mark belongs to the word it lengthens
    if "\u3041" <= char <= "\u309f":
        return "hiragana"
    if char != "・" and ("\u30a1" <= char <= "\u30ff" or "\u31f0" <= char <= "\u31ff"):
        return "katakana"
    if "\uff66" <= char <= "\uff9f":
        return "katakana"
    if char in "々〆〇" or "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff":
        return "kanji"
    return "other"


def _joins(previous: str, current: str, *, phrases: bool) -> bool:
    """Whether a character of kind current continues the token ending in kind previous."""
    if current == "space" or current == "latin":
        return previous == "latin"
    if not phrases or previous in ("", "space", "latin", "other"):
        return False
    # 予約|する, 友だち, キャンペーン, 見せる: a run of one script, okurigana and particles after.
    return current == previous or current == "hiragana"


def _is_word_char(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in "'-&@#%+/._"
    return "\u00c0" <= char <= "\u00ff"  # accented Latin letters


# ---------------------------------------------------------------------------------------------
# The font and the PNG


def _font_resource() -> Traversable:
    return resources.files(__package__).joinpath("fonts", FONT_FILE)


def bundled_font_path() -> Path | None:
    """The bundled Japanese font as a file on disk (the simulator page falls back on it); None
    when the package is not installed as plain files."""
    resource = _font_resource()
    return Path(str(resource)) if isinstance(resource, Path) and resource.is_file() else None


@cache
def _font_bytes() -> bytes:
    """Read through importlib.resources, so it works from an installed wheel or a zip."""
    return _font_resource().read_bytes()


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: the same glyph positions with or without libraqm installed.
    resource = _font_resource()
    # From a path FreeType reads the file as needed; from bytes, each size would hold a copy.
    source = str(resource) if isinstance(resource, Path) else io.BytesIO(_font_bytes())
    return ImageFont.truetype(source, size=size, layout_engine=ImageFont.Layout.BASIC)


@cache
def _font_codepoints() -> frozenset[int]:
    """The code points the font's cmap maps (parsed here: fontTools is not a runtime need)."""
    data = _font_bytes()
    (tables,) = struct.unpack_from(">H", data, 4)
    for index in range(tables):
        tag, _checksum, offset, _length = struct.unpack_from(">4sIII", data, 12 + 16 * index)
        if tag == b"cmap":
            return frozenset(_cmap_codepoints(data, offset))
    raise RenderError(f"the bundled font {FONT_FILE} has no cmap table")


def _cmap_codepoints(data: bytes, cmap: int) -> set[int]:
    """Union of the Unicode subtables (formats 4 and 12) of the cmap at offset cmap."""
    (subtables,) = struct.unpack_from(">H", data, cmap + 2)
    codepoints: set[int] = set()
    for index in range(subtables):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * index)
        if (platform, encoding) not in {(0, 3), (0, 4), (3, 1), (3, 10)}:
            continue
        start = cmap + offset
        (table_format,) = struct.unpack_from(">H", data, start)
        if table_format == 4:
            codepoints |= _format4(data, start)
        elif table_format == 12:
            codepoints |= _format12(data, start)
    return codepoints


def _format4(data: bytes, start: int) -> set[int]:
    """A segment-mapped BMP subtable; a code point counts when it maps to a real glyph."""
    (seg_x2,) = struct.unpack_from(">H", data, start + 6)
    ends_at = start + 14
    starts_at = ends_at + seg_x2 + 2
    deltas_at = starts_at + seg_x2
    range_offsets_at = deltas_at + seg_x2
    codepoints: set[int] = set()
    for segment in range(0, seg_x2, 2):
        (end,) = struct.unpack_from(">H", data, ends_at + segment)
        (first,) = struct.unpack_from(">H", data, starts_at + segment)
        (delta,) = struct.unpack_from(">H", data, deltas_at + segment)
        (range_offset,) = struct.unpack_from(">H", data, range_offsets_at + segment)
        for code in range(first, min(end, 0xFFFE) + 1):
            if range_offset == 0:
                glyph = (code + delta) & 0xFFFF
            else:
                at = range_offsets_at + segment + range_offset + 2 * (code - first)
                (glyph,) = struct.unpack_from(">H", data, at)
                glyph = (glyph + delta) & 0xFFFF if glyph else 0
            if glyph:
                codepoints.add(code)
    return codepoints


def _format12(data: bytes, start: int) -> set[int]:
    """Segmented coverage: groups of consecutive code points."""
    (groups,) = struct.unpack_from(">I", data, start + 12)
    codepoints: set[int] = set()
    for index in range(groups):
        first, last, glyph = struct.unpack_from(">III", data, start + 16 + 12 * index)
        codepoints.update(range(first if glyph else first + 1, last + 1))
    return codepoints


def _encode_png(image: Image.Image) -> bytes:
    """The first encoding, best quality first, that fits LINE's limit (no metadata, so
    equal images give equal bytes)."""
    for candidate in _png_candidates(image):
        if len(candidate) <= MAX_IMAGE_BYTES:
            return candidate
    raise RenderError(f"the rendered menu does not fit in {MAX_IMAGE_BYTES:,} bytes")


def _png_candidates(image: Image.Image) -> Iterator[bytes]:
    yield _png(image)
    for colours in (256, 64, 16):  # flat tiles and anti-aliased text survive a palette well
        quantised = image.quantize(
            colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        yield _png(quantised)


def _png(image: Image.Image) -> bytes:
    """zlib level 9; optimize also packs a small palette into fewer bits per pixel."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, compress_level=9)
    return out.getvalue()
