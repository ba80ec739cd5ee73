"""LINE's rules for rich menu images, as pure functions that return human-readable problems
(an empty list means LINE will take it). The caller adds the file and line.

The rules (Messaging API reference, "Upload rich menu image", and the May 2020 update that
replaced the six fixed sizes with ranges):

- format JPEG or PNG;
- width 800 to 2500 px, height at least 250 px, aspect ratio width ÷ height at least 1.45;
- file size at most 1 MB;
- the image is the size of the rich menu it is attached to.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, UnidentifiedImageError

from bot.line.limits import (
    MENU_MAX_WIDTH,
    MENU_MIN_ASPECT_PERCENT,
    MENU_MIN_HEIGHT,
    MENU_MIN_WIDTH,
    RICH_MENU_SIZES,
    wide_enough,
)

LARGE = RICH_MENU_SIZES["large"]
COMPACT = RICH_MENU_SIZES["compact"]
SIZE_NAMES = {LARGE: "large", COMPACT: "compact"}

MIN_WIDTH = MENU_MIN_WIDTH
MAX_WIDTH = MENU_MAX_WIDTH
MIN_HEIGHT = MENU_MIN_HEIGHT
MIN_ASPECT_RATIO = MENU_MIN_ASPECT_PERCENT / 100
# LINE writes "1 MB" and never says whether it means 10^6 or 2^20 bytes. We take the smaller,
# 1,000,000 bytes: an image that passes here is accepted under either reading.
MAX_IMAGE_BYTES = 1_000_000

# Decoding proves an image is not truncated, but a hostile header can claim billions of
# pixels; anything past this is already far outside LINE's sizes, so it is not decoded.
_MAX_DECODED_PIXELS = MAX_WIDTH * MAX_WIDTH

_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}

# Signatures of formats people try to upload, so the message can name what was given.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG/XML"),
)

ImageFormat = Literal["png", "jpeg"]


class ImageProblem(ValueError):
    """The bytes are not a PNG or JPEG image LINE could read."""


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int
    size_bytes: int
    content_type: str


def inspect_image(data: bytes) -> ImageInfo:
    """Identify and fully decode a PNG or JPEG; raise ImageProblem for anything else."""
    image_format = _sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format.upper()]) as image:
                width, height = image.size
                if width * height <= _MAX_DECODED_PIXELS:
                    image.load()  # raises on truncated or corrupt data
    except Image.DecompressionBombError as exc:
        raise ImageProblem(f"the image is far too large to read: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageProblem(
            f"the {image_format.upper()} image is truncated or corrupt (unreadable header)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(
            f"the {image_format.upper()} image is truncated or corrupt ({exc})"
        ) from exc
    return ImageInfo(
        format=image_format,
        width=width,
        height=height,
        size_bytes=len(data),
        content_type=_CONTENT_TYPES[image_format],
    )


def _sniff_format(data: bytes) -> ImageFormat:
    """PNG or JPEG by signature, else an ImageProblem naming what the bytes look like."""
    if not data:
        raise ImageProblem("the image file is empty")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    other = _other_format_name(data)
    if other:
        raise ImageProblem(f"{other} images are not accepted: LINE takes PNG or JPEG")
    raise ImageProblem("the file is not a PNG or JPEG image (unrecognised data)")


def _other_format_name(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":  # ISO media: HEIC from iPhones, AVIF
        return "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIC/HEIF"
    head = data[:16].lstrip()
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def menu_size_problems(width: int, height: int) -> list[str]:
    """What is wrong with a rich menu (or image) of width × height px under LINE's rules."""
    if width <= 0 or height <= 0:
        return [f"size {width}×{height} px: width and height must be positive"]
    problems = []
    if width < MIN_WIDTH:
        problems.append(f"width {width} px is below LINE's minimum of {MIN_WIDTH} px")
    if width > MAX_WIDTH:
        problems.append(f"width {width} px is above LINE's maximum of {MAX_WIDTH} px")
    if height < MIN_HEIGHT:
        problems.append(f"height {height} px is below LINE's minimum of {MIN_HEIGHT} px")
    if not wide_enough(width, height):
        problems.append(
            f"aspect ratio {width}÷{height} = {width / height:.3f} is below LINE's minimum "
            f"of {MIN_ASPECT_RATIO} (width ÷ height): make it wider or less tall"
        )
    return problems


def image_problems(data: bytes, *, expected_size: tuple[int, int]) -> list[str]:
    """Everything LINE would refuse about uploading these bytes to a menu of expected_size."""
    try:
        info = inspect_image(data)
    except ImageProblem as exc:
        return [str(exc)]
    problems = []
    if info.size_bytes > MAX_IMAGE_BYTES:
        problems.append(
            f"image is {info.size_bytes:,} bytes; LINE accepts at most 1 MB "
            f"({MAX_IMAGE_BYTES:,} bytes): save it smaller (fewer colours, or JPEG)"
        )
    problems.extend(f"image {problem}" for problem in menu_size_problems(info.width, info.height))
    if (info.width, info.height) != tuple(expected_size):
        problems.append(
            f"image is {info.width}×{info.height} px but the menu is "
            f"{_describe_size(*expected_size)}"
        )
    return problems


def _describe_size(width: int, height: int) -> str:
    name = SIZE_NAMES.get((width, height))
    return f"{width}×{height} (size: {name})" if name else f"{width}×{height}"
