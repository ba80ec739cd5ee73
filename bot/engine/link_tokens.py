"""Tracked links (URLクリック測定): `{{ link('id') }}` renders `STEPLINE_PUBLIC_URL/r/<token>`;
`GET /r/<token>` (`bot.web.links`) records the click and runs the link's `on_click` in the
friend's turn (`bot.services.links`), then redirects to the URL the catalogue names.

The token is stateless and authenticated: who (the friend's LINE user id), which link, and
the message that carried it (the turn's cause, truncated), followed by a truncated
HMAC-SHA256 over those bytes, all in unpadded url-safe base64:

    version 0x01
    friend  0x00 + 16 bytes (a LINE id `U` + 32 hex digits, packed)
            | 0x01 + 2-byte length + UTF-8 (any other id)
    link    UTF-8, then `|` (link ids never contain `|`)
    source  UTF-8, at most 40 bytes (the rest of the body)
    mac     the first 16 bytes of HMAC-SHA256(key, all of the above)

The key is HMAC-SHA256(secret, "stepline tracked links v1") with `STEPLINE_LINK_SECRET` as
the secret, or the channel secret when that is unset. Neither secret nor key is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from bot.config import Settings
from bot.line.limits import LINE_USER_ID

log = logging.getLogger(__name__)

VERSION = 1
KEY_LABEL = b"stepline tracked links v1"
MAC_BYTES = 16  # 128 bits: far beyond online guessing, and keeps the token short
SOURCE_BYTES = 40
MAX_TOKEN_CHARS = 600  # a link id of 100 CJK characters still fits

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_PACKED_ID, _TEXT_ID = 0, 1


@dataclass(frozen=True)
class Click:
    """What a valid token says: this friend, this link, from this message."""

    line_user_id: str
    link: str
    source: str


def derive_key(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if len(text) > MAX_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # One token, one spelling: base64's unused trailing bits must not give a second one.
    return data if _b64(data) == text else None


def _truncate(text: str, limit: int) -> bytes:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


class LinkTokens:
    """Makes and checks the signed tokens of tracked links (one per process, from Settings)."""

    def __init__(self, key: bytes, public_url: str) -> None:
        self._key = key
        self.public_url = public_url.rstrip("/")

    def __repr__(self) -> str:  # never show the key
        return f"LinkTokens(public_url={self.public_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkTokens | None:
        """None when there is no secret to sign with: `link('id')` then renders the
        catalogue's URL untracked (a process without LINE credentials, a bare CLI)."""
        secret = settings.link_secret or settings.channel_secret
        if not secret:
            log.info("no STEPLINE_LINK_SECRET or channel secret: links are not tracked")
            return None
        return cls(derive_key(secret), settings.public_url)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]

    def token(self, line_user_id: str, link: str, source: str) -> str:
        if "|" in link:
            raise ValueError(f"link id {link!r} contains '|'")
        if LINE_USER_ID.fullmatch(line_user_id):
            friend = bytes([_PACKED_ID]) + bytes.fromhex(line_user_id[1:])
        else:
            raw = line_user_id.encode("utf-8")
            friend = bytes([_TEXT_ID]) + len(raw).to_bytes(2, "big") + raw
        body = (
            bytes([VERSION])
            + friend
            + link.encode("utf-8")
            + b"|"
            + _truncate(source, SOURCE_BYTES)
        )
        return _b64(body + self._mac(body))

    def url(self, line_user_id: str, link: str, source: str) -> str:
        return f"{self.public_url}/r/{self.token(line_user_id, link, source)}"

    def read(self, token: str) -> Click | None:
        """The click a token stands for; None for anything not made with this key."""
        data = _unb64(token)
        if data is None or len(data) < 1 + MAC_BYTES + 3:
            return None
        body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
        if not hmac.compare_digest(self._mac(body), mac):
            return None
        try:
            return _parse(body)
        except (ValueError, IndexError):  # signed by us, so only a format change gets here
            return None


def _parse(body: bytes) -> Click | None:
    if body[0] != VERSION:
        return None
    if body[1] == _PACKED_ID:
        if len(body) < 18:
            return None
        line_user_id, rest = "U" + body[2:18].hex(), body[18:]
    elif body[1] == _TEXT_ID:
        size = int.from_bytes(body[2:4], "big")
        line_user_id, rest = body[4 : 4 + size].decode("utf-8"), body[4 + size :]
    else:
        return None
    link, bar, source = rest.partition(b"|")
    if not bar or not link:
        return None
    return Click(line_user_id, link.decode("utf-8"), source.decode("utf-8"))
