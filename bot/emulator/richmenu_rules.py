"""LINE's rules for rich menu objects and rich menu images, beyond the OpenAPI schema.

From the Messaging API reference ("Rich menu object", "Upload rich menu image"): every key of
the rich menu object is required; the size is 800–2500 px wide, at least 250 px high, with an
aspect ratio (width / height) of at least 1.45; at most 20 areas; `chatBarText` at most 14
characters and `name` at most 300 (the schema says so too). The image is JPEG or PNG (else
415), at most 1 MB, and, since the areas are laid over it, exactly the menu's size.
The checks here are pure (a body or bytes in, problems out) so they are tested directly.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from bot.emulator.validation import (
    ErrorDetail,
    action_limits,
    property_path,
    utf16_len,
    validate_request,
)

MIN_WIDTH = 800
MAX_WIDTH = 2500
MIN_HEIGHT = 250
MIN_ASPECT_RATIO = 1.45
MAX_AREAS = 20
MAX_IMAGE_BYTES = 1024 * 1024
MESSAGE_TEXT_MAX = 300
URI_MAX = 1000
REQUIRED = ("size", "selected", "name", "chatBarText", "areas")
BOUNDS_KEYS = ("x", "y", "width", "height")
# Camera, camera roll and location actions are for quick reply buttons only.
AREA_ACTIONS = {"postback", "message", "uri", "datetimepicker", "richmenuswitch", "clipboard"}
ACTION_REQUIRED = {
    "postback": ("data",),
    "message": ("text",),
    "uri": ("uri",),
    "datetimepicker": ("data", "mode"),
    "richmenuswitch": ("richMenuAliasId", "data"),
    "clipboard": ("clipboardText",),
}
URI_RE = re.compile(r"^(https?|line|tel):", re.IGNORECASE)
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}

# LINE's own error messages (Messaging API reference, examples of error responses).
IMAGE_SIZE_NOT_ALLOWED = "The image size is not allowed for richmenu"
IMAGE_ALREADY_UPLOADED = "An image has already been uploaded to the richmenu"
# The emulator's own (LINE's reference gives no wording for it).
IMAGE_NOT_READABLE = "The image is not a JPEG or PNG image as its Content-Type says"


def _ints(node: Any, keys: tuple[str, ...]) -> list[int] | None:
    """The values of `keys` when the node has them all as integers (else None)."""
    if not isinstance(node, dict):
        return None
    values = [node.get(key) for key in keys]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [int(v) for v in values if v is not None]
    return None


def _missing(node: dict[str, Any], keys: tuple[str, ...], path: str) -> list[ErrorDetail]:
    prefix = f"{path}." if path else ""
    return [ErrorDetail("must be specified", prefix + key) for key in keys if node.get(key) is None]


# --- the rich menu object ---------------------------------------------------------------------


def size_problems(size: Any) -> list[ErrorDetail]:
    """Width 800–2500, height at least 250, width / height at least 1.45."""
    if not isinstance(size, dict):
        return []
    found = _missing(size, ("width", "height"), "size")
    values = _ints(size, ("width", "height"))
    if found or values is None:
        return found
    width, height = values
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        found.append(ErrorDetail(f"must be between {MIN_WIDTH} and {MAX_WIDTH}", "size.width"))
    if height < MIN_HEIGHT:
        found.append(ErrorDetail(f"must be at least {MIN_HEIGHT}", "size.height"))
    elif width / height < MIN_ASPECT_RATIO:
        message = f"the aspect ratio (width / height) must be at least {MIN_ASPECT_RATIO}"
        found.append(ErrorDetail(message, "size"))
    return found


def _bounds_problems(bounds: Any, size: Any, path: str) -> list[ErrorDetail]:
    if not isinstance(bounds, dict):
        return []
    found = _missing(bounds, BOUNDS_KEYS, path)
    values = _ints(bounds, BOUNDS_KEYS)
    limits = _ints(size, ("width", "height"))
    if found or values is None or limits is None:
        return found
    x, y, w, h = values
    width, height = limits
    if x + w > width or y + h > height:
        found.append(ErrorDetail(f"must be within the rich menu size ({width}x{height})", path))
    return found


def _action_problems(action: Any, index: int) -> list[ErrorDetail]:
    parts: list[str | int] = ["areas", index, "action"]
    path = property_path(parts)
    if not isinstance(action, dict):
        return []
    kind = action.get("type")
    if kind not in AREA_ACTIONS:
        return [ErrorDetail(f"the {kind} action cannot be used in a rich menu", f"{path}.type")]
    found = _missing(action, ACTION_REQUIRED[kind], path)
    text = action.get("text")
    if kind == "message" and isinstance(text, str) and utf16_len(text) > MESSAGE_TEXT_MAX:
        found.append(
            ErrorDetail(f"Length must be between 0 and {MESSAGE_TEXT_MAX}", f"{path}.text")
        )
    uri = action.get("uri")
    if kind == "uri" and isinstance(uri, str) and (len(uri) > URI_MAX or not URI_RE.match(uri)):
        found.append(ErrorDetail("invalid uri", f"{path}.uri"))  # LINE's own wording
    return found + action_limits(action, parts)


def _area_problems(area: Any, size: Any, index: int) -> list[ErrorDetail]:
    if not isinstance(area, dict):
        return []
    path = property_path(["areas", index])
    found = _missing(area, ("bounds", "action"), path)
    found += _bounds_problems(area.get("bounds"), size, f"{path}.bounds")
    return found + _action_problems(area.get("action"), index)


def _areas_problems(body: dict[str, Any]) -> list[ErrorDetail]:
    areas = body.get("areas")
    if not isinstance(areas, list):
        return []
    found: list[ErrorDetail] = []
    if not 1 <= len(areas) <= MAX_AREAS:
        found.append(ErrorDetail(f"Size must be between 1 and {MAX_AREAS}", "areas"))
    for index, area in enumerate(areas):
        found += _area_problems(area, body.get("size"), index)
    return found


def rich_menu_problems(body: Any) -> list[ErrorDetail]:
    """Everything wrong with a rich menu object: the spec's `RichMenuRequest` schema first,
    then LINE's rules for the properties the schema did not already flag."""
    details = validate_request("RichMenuRequest", body)
    if not isinstance(body, dict):
        return details
    flagged = {detail.property for detail in details}
    extra = [*_missing(body, REQUIRED, ""), *size_problems(body.get("size"))]
    extra += _areas_problems(body)
    return details + [detail for detail in extra if detail.property not in flagged]


# --- the image --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageProblem:
    """Why an upload is refused: the HTTP status, LINE's message and, when LINE's message is
    general, the emulator's reason (as a `details` entry on `property` "image")."""

    status: int
    message: str
    reason: str | None = None

    def details(self) -> list[ErrorDetail]:
        return [ErrorDetail(self.reason, "image")] if self.reason else []


def _pixel_size(data: bytes, expected_format: str) -> tuple[int, int] | str:
    """The image's (width, height), or why it is not a readable image of that format."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found, size = image.format, image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return f"the body is not a readable {expected_format} image"
    if found != expected_format:
        return f"the body is a {found} image, not {expected_format} as its Content-Type says"
    return size


def image_problem(data: bytes, content_type: str, menu_size: dict[str, int]) -> ImageProblem | None:
    """What is wrong with an uploaded rich menu image (None: it is accepted)."""
    expected = IMAGE_FORMATS.get(content_type)
    if expected is None:
        return ImageProblem(415, f"The content type, '{content_type}', is not supported")
    if len(data) > MAX_IMAGE_BYTES:
        reason = f"the file is {len(data)} bytes; at most {MAX_IMAGE_BYTES} (1 MB)"
        return ImageProblem(400, IMAGE_SIZE_NOT_ALLOWED, reason)
    size = _pixel_size(data, expected)
    if isinstance(size, str):
        return ImageProblem(400, IMAGE_NOT_READABLE, size)
    width, height = size
    wanted = (menu_size["width"], menu_size["height"])
    if (
        not (MIN_WIDTH <= width <= MAX_WIDTH and height >= MIN_HEIGHT)
        or width / height < MIN_ASPECT_RATIO
    ):
        reason = (
            f"the image is {width}x{height}; LINE needs 800–2500 px wide, at least 250 px high "
            "and width / height at least 1.45"
        )
        return ImageProblem(400, IMAGE_SIZE_NOT_ALLOWED, reason)
    if (width, height) != wanted:
        reason = f"the image is {width}x{height}, the rich menu is {wanted[0]}x{wanted[1]}"
        return ImageProblem(400, IMAGE_SIZE_NOT_ALLOWED, reason)
    return None
