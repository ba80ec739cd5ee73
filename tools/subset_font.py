#!/usr/bin/env python3
"""Regenerate the Japanese font bundled for rendered rich menus (bot/richmenus/fonts/).

It subsets the Japanese face of Noto Sans CJK Bold (SIL Open Font License 1.1) to what menu
labels use: ASCII, Latin-1, punctuation, kana, full/half-width forms, common menu symbols,
the non-kanji rows of JIS X 0208 and the kanji of JIS X 0208 levels 1 and 2 plus the Windows
(CP932) extension kanji such as 髙 and 﨑. Hinting and the layout tables are dropped (the
renderer lays text out itself), which keeps the file small.

    .venv/bin/python tools/subset_font.py                  # Debian's fonts-noto-cjk
    .venv/bin/python tools/subset_font.py --source NotoSansCJK-Bold.ttc --output out.otf
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
DEFAULT_OUTPUT = ROOT / "bot" / "richmenus" / "fonts" / "NotoSansJP-Bold-subset.otf"
JP_FAMILY = "Noto Sans CJK JP"

# Whole Unicode blocks, kept for whatever of them the font has.
BLOCKS: dict[str, tuple[int, int]] = {
    "Basic Latin": (0x0020, 0x007E),
    "Latin-1 Supplement": (0x00A0, 0x00FF),
    "General Punctuation": (0x2000, 0x206F),
    "Currency Symbols": (0x20A0, 0x20CF),
    "Letterlike Symbols": (0x2100, 0x214F),
    "Number Forms": (0x2150, 0x218F),
    "Arrows": (0x2190, 0x21FF),
    "Enclosed Alphanumerics": (0x2460, 0x24FF),
    "Geometric Shapes": (0x25A0, 0x25FF),
    "Miscellaneous Symbols": (0x2600, 0x26FF),
    "Dingbats": (0x2700, 0x27BF),
    "CJK Symbols and Punctuation": (0x3000, 0x303F),
    "Hiragana": (0x3040, 0x309F),
    "Katakana": (0x30A0, 0x30FF),
    "Katakana Phonetic Extensions": (0x31F0, 0x31FF),
    "Enclosed CJK Letters and Months": (0x3200, 0x32FF),
    "CJK Compatibility": (0x3300, 0x33FF),
    "Halfwidth and Fullwidth Forms": (0xFF00, 0xFFEF),
}

# Rows of JIS X 0208 (ku): 1-8 symbols, Latin, kana, Greek, Cyrillic, box drawing;
# 16-47 level 1 kanji; 48-84 level 2 kanji.
JIS_NON_KANJI_ROWS = range(1, 9)
JIS_KANJI_ROWS = range(16, 85)


def block_chars() -> Iterator[str]:
    for first, last in BLOCKS.values():
        yield from (chr(code) for code in range(first, last + 1))


def jis_x_0208_chars(rows: Iterable[int]) -> Iterator[str]:
    """Characters of the given JIS X 0208 rows, decoded through EUC-JP (row r is byte 0xA0+r)."""
    for row in rows:
        for cell in range(1, 95):
            try:
                yield bytes([0xA0 + row, 0xA0 + cell]).decode("euc_jp")
            except UnicodeDecodeError:
                continue  # an unassigned cell


def cp932_extension_chars() -> Iterator[str]:
    """Windows-31J's NEC and IBM extensions (①, ㈱, 髙, 﨑 ...): lead bytes 0x87 and 0xED-0xFC."""
    for lead in (0x87, *range(0xED, 0xFD)):
        for trail in (*range(0x40, 0x7F), *range(0x80, 0xFD)):
            try:
                char = bytes([lead, trail]).decode("cp932")
            except UnicodeDecodeError:
                continue
            if not 0xE000 <= ord(char) <= 0xF8FF:  # skip the user-defined (private use) area
                yield char


def wanted_characters() -> set[str]:
    chars = set(block_chars())
    chars.update(jis_x_0208_chars(JIS_NON_KANJI_ROWS))
    chars.update(jis_x_0208_chars(JIS_KANJI_ROWS))
    chars.update(cp932_extension_chars())
    return chars


def load_japanese_face(source: Path) -> TTFont:
    """The JP face of a CJK collection (index 0 in Noto's .ttc), or the font itself."""
    if source.suffix.lower() != ".ttc":
        return TTFont(source)
    for font in TTCollection(source).fonts:
        if font["name"].getDebugName(1) == JP_FAMILY:
            return font
    raise SystemExit(f"{source} has no {JP_FAMILY!r} face")


def subset_options() -> subset.Options:
    options = subset.Options()
    options.hinting = False  # FreeType's autohinter is fine at menu sizes
    options.desubroutinize = False  # keep CFF subroutines: smaller file
    options.layout_features = []  # the renderer uses Pillow's basic layout: no GSUB/GPOS
    options.drop_tables += ["BASE", "GDEF", "GSUB", "GPOS", "VORG", "vhea", "vmtx", "DSIG"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]  # keep copyright/licence
    options.name_languages = [0x409]
    options.notdef_outline = True  # tests compare labels against the .notdef box
    return options


def make_subset(source: Path, output: Path) -> tuple[int, int, int]:
    """Write the subset; returns (characters mapped, glyphs, bytes)."""
    font = load_japanese_face(source)
    available = set(font.getBestCmap())
    codepoints = sorted(ord(char) for char in wanted_characters() if ord(char) in available)
    subsetter = subset.Subsetter(subset_options())
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    font.recalcTimestamp = False  # keep the source's date: same source, same bytes
    font.save(output)
    return len(codepoints), len(font.getGlyphOrder()), output.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="NotoSansCJK-Bold")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the .otf to write")
    args = parser.parse_args(argv)
    if not args.source.exists():
        parser.error(f"{args.source} not found (Debian: apt-get install fonts-noto-cjk)")
    chars, glyphs, size = make_subset(args.source, args.output)
    print(f"{args.output}: {chars} characters, {glyphs} glyphs, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
