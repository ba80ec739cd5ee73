"""Identifiers shaped like the ones the LINE Platform issues."""

from __future__ import annotations

import re
import secrets
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


def message_id() -> str:
    """A numeric message id (LINE's are 18-digit decimal strings)."""
    return str(secrets.randbelow(9 * 10**17) + 10**17)


def quote_token() -> str:
    return secrets.token_urlsafe(48)


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
