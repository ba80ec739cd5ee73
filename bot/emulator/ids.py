"""Identifiers shaped like the ones the LINE Platform issues."""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import uuid
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

USER_ID_RE = re.compile(r"^U[0-9a-f]{32}$")
CHAT_ID_RE = re.compile(r"^[UCR][0-9a-f]{32}$")
RICH_MENU_ID_RE = re.compile(r"^richmenu-[0-9a-f]{32}$")
# The spec's CreateRichMenuAliasRequest.richMenuAliasId pattern.
RICH_MENU_ALIAS_ID_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def user_id() -> str:
    """`U` + 32 lowercase hex characters, like a LINE user id."""
    return "U" + secrets.token_hex(16)


def ulid(at: datetime) -> str:
    """A ULID (26 Crockford base32 characters: 48-bit ms time + 80 random bits)."""
    value = (int(at.timestamp() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# Message ids count up from a random 18-digit start: unique within a run by construction and
# cheap. A one-to-many send takes a block of consecutive ids at once (one per message per
# recipient), so the counter is a plain int behind a lock rather than an `itertools.count`.
_message_id_lock = threading.Lock()
_next_message_id = secrets.randbelow(8 * 10**17) + 10**17


def message_id() -> str:
    """A numeric message id (LINE's are 18-digit decimal strings)."""
    return str(message_id_block(1))


def message_id_block(n: int) -> int:
    """The first of `n` new consecutive message ids, as an int (`str()` it to get the id)."""
    global _next_message_id
    with _message_id_lock:
        first = _next_message_id
        _next_message_id += n
    return first


# Quote tokens: a random prefix per process and a counter, so they are opaque, never repeat and
# cost a format call instead of reading the OS's randomness (one per recipient of a multicast).
_QUOTE_PREFIX = secrets.token_urlsafe(45)
_quote_numbers = itertools.count(secrets.randbelow(2**60))


def quote_token() -> str:
    return f"{_QUOTE_PREFIX}{next(_quote_numbers):016x}"


# Quote tokens of a one-to-many send's messages are derived from their message ids (so the
# store keeps none and hands out the same token on every read): another prefix, so they never
# meet `quote_token()`'s, and the id scrambled by a random key, so they don't show it.
_DERIVED_QUOTE_PREFIX = secrets.token_urlsafe(45)
_DERIVED_QUOTE_KEY = secrets.randbits(64)


def quote_token_for(message_id: int) -> str:
    """The quote token of the bot message with this id (always the same for the same id)."""
    return f"{_DERIVED_QUOTE_PREFIX}{message_id ^ _DERIVED_QUOTE_KEY:016x}"


def reply_token() -> str:
    return secrets.token_hex(16)


def request_id() -> str:
    """The `x-line-request-id` of one API call (a UUID)."""
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


def is_user_id(value: str) -> bool:
    return bool(USER_ID_RE.match(value))


def audience_group_id() -> int:
    """A 13-digit audience group id (LINE's are int64 numbers like 1234567890123)."""
    return secrets.randbelow(9 * 10**12) + 10**12


def rich_menu_id() -> str:
    """`richmenu-` + 32 lowercase hex characters, like LINE's rich menu ids."""
    return "richmenu-" + secrets.token_hex(16)


def is_rich_menu_id(value: str) -> bool:
    return bool(RICH_MENU_ID_RE.match(value))


def is_rich_menu_alias_id(value: str) -> bool:
    return bool(RICH_MENU_ALIAS_ID_RE.match(value))
