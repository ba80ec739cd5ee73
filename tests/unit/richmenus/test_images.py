"""LINE's rich menu image rules: format, bytes, dimensions and the menu's size."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from bot.richmenus.images import (
    COMPACT,
    LARGE,
    MAX_IMAGE_BYTES,
    ImageInfo,
    ImageProblem,
    image_problems,
    inspect_image,
    menu_size_problems,
)


def encode(width: int, height: int, image_format: str = "PNG") -> bytes:
    """A plain image of the given size and format, made with Pillow."""
    image = Image.new("RGB", (width, height), (6, 199, 85))
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about 3 bytes per pixel."""
    pixels = random.Random(0).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def pad_png(data: bytes, total: int) -> bytes:
    """Insert a private ancillary chunk before IEND so the PNG is exactly total bytes."""
    iend = data.rindex(b"IEND") - 4
    size = total - len(data) - 12
    chunk_type = b"prVt"  # ancillary, private: readers skip it
    body = b"\0" * size
    chunk = struct.pack(">I", size) + chunk_type + body
    chunk += struct.pack(">I", zlib.crc32(chunk_type + body))
    return data[:iend] + chunk + data[iend:]


# --- accepted images ------------------------------------------------------------------------


def test_a_large_png_passes() -> None:
    data = encode(*LARGE)
    assert image_problems(data, expected_size=LARGE) == []
    assert inspect_image(data) == ImageInfo("png", 2500, 1686, len(data), "image/png")


def test_a_compact_jpeg_passes() -> None:
    data = encode(*COMPACT, "JPEG")
    assert image_problems(data, expected_size=COMPACT) == []
    info = inspect_image(data)
    assert (info.format, info.width, info.height) == ("jpeg", 2500, 843)
    assert info.content_type == "image/jpeg"


def test_a_custom_size_within_the_rules_passes() -> None:
    assert image_problems(encode(1200, 810), expected_size=(1200, 810)) == []
    assert image_problems(encode(800, 250), expected_size=(800, 250)) == []


def test_the_documented_sizes() -> None:
    assert LARGE == (2500, 1686)
    assert COMPACT == (2500, 843)
    assert MAX_IMAGE_BYTES == 1_000_000


# --- file size ------------------------------------------------------------------------------


def test_over_one_megabyte_is_a_problem() -> None:
    data = noise_png(1000, 500)  # 1.5 MB of noise
    assert len(data) > MAX_IMAGE_BYTES
    problems = image_problems(data, expected_size=(1000, 500))
    assert len(problems) == 1
    assert f"image is {len(data):,} bytes" in problems[0]
    assert "at most 1 MB (1,000,000 bytes)" in problems[0]


def test_exactly_the_limit_passes_and_one_byte_more_does_not() -> None:
    small = encode(*LARGE)
    at_limit = pad_png(small, MAX_IMAGE_BYTES)
    over = pad_png(small, MAX_IMAGE_BYTES + 1)
    assert len(at_limit) == MAX_IMAGE_BYTES
    assert image_problems(at_limit, expected_size=LARGE) == []
    assert image_problems(over, expected_size=LARGE) == [
        "image is 1,000,001 bytes; LINE accepts at most 1 MB (1,000,000 bytes): "
        "save it smaller (fewer colours, or JPEG)"
    ]


# --- dimensions -----------------------------------------------------------------------------


def test_too_narrow_an_image() -> None:
    problems = image_problems(encode(700, 250), expected_size=(700, 250))
    assert problems == ["image width 700 px is below LINE's minimum of 800 px"]


def test_too_wide_an_image() -> None:
    problems = image_problems(encode(2600, 900), expected_size=(2600, 900))
    assert problems == ["image width 2600 px is above LINE's maximum of 2500 px"]


def test_too_short_an_image() -> None:
    problems = image_problems(encode(1000, 200), expected_size=(1000, 200))
    assert problems == ["image height 200 px is below LINE's minimum of 250 px"]


def test_too_narrow_a_ratio() -> None:
    problems = image_problems(encode(1200, 1000), expected_size=(1200, 1000))
    assert len(problems) == 1
    assert "aspect ratio 1200÷1000 = 1.200 is below LINE's minimum of 1.45" in problems[0]


def test_a_ratio_of_exactly_1_45_is_fine() -> None:
    assert menu_size_problems(1450, 1000) == []
    assert len(menu_size_problems(1449, 1000)) == 1
    assert menu_size_problems(2500, 1724) == []  # 1.4501...
    assert len(menu_size_problems(2500, 1725)) == 1  # 1.4492...


def test_menu_sizes() -> None:
    assert menu_size_problems(*LARGE) == []
    assert menu_size_problems(*COMPACT) == []
    assert menu_size_problems(800, 250) == []
    assert menu_size_problems(0, 843) == ["size 0×843 px: width and height must be positive"]
    assert menu_size_problems(799, 100) == [
        "width 799 px is below LINE's minimum of 800 px",
        "height 100 px is below LINE's minimum of 250 px",
    ]


def test_an_image_of_another_size_than_the_menu() -> None:
    problems = image_problems(encode(2500, 1600), expected_size=LARGE)
    assert problems == ["image is 2500×1600 px but the menu is 2500×1686 (size: large)"]


def test_a_large_image_for_a_compact_menu() -> None:
    problems = image_problems(encode(*LARGE), expected_size=COMPACT)
    assert problems == ["image is 2500×1686 px but the menu is 2500×843 (size: compact)"]


def test_a_custom_menu_size_is_named_by_its_numbers() -> None:
    problems = image_problems(encode(1200, 810), expected_size=(1200, 405))
    assert problems == ["image is 1200×810 px but the menu is 1200×405"]


def test_several_problems_are_all_reported() -> None:
    problems = image_problems(encode(700, 600), expected_size=LARGE)
    assert len(problems) == 3  # width, ratio, and not the menu's size
    assert problems[-1] == "image is 700×600 px but the menu is 2500×1686 (size: large)"


# --- not PNG or JPEG, or damaged ------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("WEBP", "WebP"), ("TIFF", "TIFF")]
)
def test_other_formats_are_named(image_format: str, name: str) -> None:
    data = encode(*LARGE, image_format)
    expected = f"{name} images are not accepted: LINE takes PNG or JPEG"
    assert image_problems(data, expected_size=LARGE) == [expected]
    with pytest.raises(ImageProblem, match=expected):
        inspect_image(data)


def test_image_problem_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        inspect_image(encode(*LARGE, "GIF"))


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_images(image_format: str) -> None:
    data = encode(*LARGE, image_format)
    for cut in (len(data) // 2, 40):
        problems = image_problems(data[:cut], expected_size=LARGE)
        assert len(problems) == 1
        assert problems[0].startswith(f"the {image_format} image is truncated or corrupt")


def test_a_png_with_a_damaged_body() -> None:
    data = bytearray(encode(*LARGE))
    idat = data.index(b"IDAT") + 8
    data[idat : idat + 16] = b"\xff" * 16
    problems = image_problems(bytes(data), expected_size=LARGE)
    assert len(problems) == 1
    assert "truncated or corrupt" in problems[0]


def test_random_bytes() -> None:
    data = random.Random(1).randbytes(5000)
    assert image_problems(data, expected_size=LARGE) == [
        "the file is not a PNG or JPEG image (unrecognised data)"
    ]


def test_an_empty_file() -> None:
    assert image_problems(b"", expected_size=LARGE) == ["the image file is empty"]


def test_svg_and_pdf_are_named() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="2500" height="1686"></svg>'
    assert image_problems(svg, expected_size=LARGE) == [
        "SVG images are not accepted: LINE takes PNG or JPEG"
    ]
    assert image_problems(b"%PDF-1.7\n...", expected_size=LARGE) == [
        "PDF images are not accepted: LINE takes PNG or JPEG"
    ]
