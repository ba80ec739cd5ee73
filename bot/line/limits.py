"""LINE's documented limits, as numbers and small checks (the Messaging API reference and
`../shared/line-openapi/`). Every layer reads LINE's rules from here; nothing here imports
the SDK."""

from __future__ import annotations

import re

MAX_MESSAGES_PER_REQUEST = 5
MAX_MULTICAST_RECIPIENTS = 500  # the spec's MulticastRequest.to maxItems
MAX_BULK_LINK_USERS = 500  # users per bulk rich menu link/unlink
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_TEXT_UTF16 = 5000
MAX_ALT_TEXT = 400  # what stepline cuts a template message's altText to
MAX_FLEX_ALT_TEXT = 1500  # LINE's limit for a flex message's altText
# Template messages (buttons, confirm, carousel): a text is shorter under a title or image.
MAX_BUTTONS_TEXT = 160
MAX_CONFIRM_TEXT = 240
MAX_CAROUSEL_TEXT = 120
MAX_DECORATED_TEXT = 60  # buttons or carousel text with a title or an image
MAX_TEMPLATE_TITLE = 40
MAX_ACTION_TEXT = 300  # a message action's text, a postback's displayText
MAX_URI = 1000  # a URI action's uri
MAX_IMAGE_URL = 2000  # image and thumbnail URLs (HTTPS only)

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")  # a user id as LINE issues them

# LINE's two standard rich menu sizes (the image must be exactly the menu's size).
RICH_MENU_SIZES: dict[str, tuple[int, int]] = {"large": (2500, 1686), "compact": (2500, 843)}
# LINE's rules for any other size (and for the image, which must be the menu's size).
MENU_MIN_WIDTH, MENU_MAX_WIDTH, MENU_MIN_HEIGHT = 800, 2500, 250
MENU_MIN_ASPECT_PERCENT = 145  # width / height ≥ 1.45, compared in integers (1.45 is inexact)


def wide_enough(width: int, height: int) -> bool:
    """LINE's aspect rule: width / height is at least 1.45."""
    return width * 100 >= height * MENU_MIN_ASPECT_PERCENT


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def truncate_utf16(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units (never splitting a pair)."""
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"
