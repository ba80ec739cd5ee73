"""Rate limits per Messaging API endpoint (off by default; `PUT /_emulator/rate_limits`).

LINE's documented limits, per channel and per endpoint (the same URL with another HTTP method is
another endpoint), from the Messaging API reference, "Rate limits"
(https://developers.line.biz/en/reference/messaging-api/#rate-limits). Everything not listed
there ("Other API endpoints", which includes reply, push and get profile) has 2,000 requests
per second. Multicast has 200 per second since 2025-04-23 (LINE news, 2025-03-31), and getting
the list of rich menus 10 per second since 2026-05-26 (LINE news, 2026-05-07). Over the limit LINE answers `429 Too Many Requests` with
`{"message": "The API rate limit has been exceeded. Try again later."}`.

LINE meters with a token bucket (LINE Developers tips, 2026-09-10, "Understanding Messaging API
rate limits and the token bucket algorithm"): a bucket holds tokens for as many requests as the
limit allows per period, each request takes one, and tokens flow back at the limit's rate; so
60/h allows a burst of 60 and then one more a minute. This does the same, with one bucket per
endpoint, on `time.monotonic()`: request rates are real time, never the emulator's (possibly
frozen) business clock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SOURCE = "https://developers.line.biz/en/reference/messaging-api/#rate-limits"
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
OTHER = "*"

# "METHOD /path/{param}" → "N/s" | "N/min" | "N/h". Endpoint names as in LINE's table.
LINE_RATE_LIMITS: dict[str, str] = {
    # 60 requests per hour
    "POST /v2/bot/message/narrowcast": "60/h",  # Send a narrowcast message
    "POST /v2/bot/message/broadcast": "60/h",  # Send a broadcast message
    "GET /v2/bot/insight/message/delivery": "60/h",  # Get number of message deliveries
    "GET /v2/bot/insight/followers": "60/h",  # Get number of friends
    "GET /v2/bot/insight/demographic": "60/h",  # Get friend demographics
    "GET /v2/bot/insight/message/event": "60/h",  # Get user interaction statistics
    "GET /v2/bot/insight/message/event/aggregation": "60/h",  # Get statistics per unit
    "POST /v2/bot/channel/webhook/test": "60/h",  # Test webhook endpoint
    # 60 requests per minute (audiences)
    "POST /v2/bot/audienceGroup/upload": "60/min",  # Create audience (by JSON)
    "POST /v2/bot/audienceGroup/upload/byFile": "60/min",  # Create audience (by file)
    "PUT /v2/bot/audienceGroup/upload": "60/min",  # Add user IDs (by JSON)
    "PUT /v2/bot/audienceGroup/upload/byFile": "60/min",  # Add user IDs (by file)
    "POST /v2/bot/audienceGroup/click": "60/min",  # Create message click audience
    "POST /v2/bot/audienceGroup/imp": "60/min",  # Create message impression audience
    "PUT /v2/bot/audienceGroup/{audienceGroupId}/updateDescription": "60/min",  # Rename
    "DELETE /v2/bot/audienceGroup/{audienceGroupId}": "60/min",  # Delete audience
    "GET /v2/bot/audienceGroup/{audienceGroupId}": "60/min",  # Get audience data
    "GET /v2/bot/audienceGroup/list": "60/min",  # Get data for multiple audiences
    "GET /v2/bot/audienceGroup/shared/{audienceGroupId}": "60/min",  # Shared audience data
    "GET /v2/bot/audienceGroup/shared/list": "60/min",  # List of shared audiences
    # 1,000 requests per minute
    "PUT /v2/bot/channel/webhook/endpoint": "1000/min",  # Set webhook endpoint URL
    "GET /v2/bot/channel/webhook/endpoint": "1000/min",  # Get webhook endpoint information
    # 100 requests per hour (not applied to LINE Official Account Manager's own edits)
    "POST /v2/bot/richmenu": "100/h",  # Create rich menu
    "DELETE /v2/bot/richmenu/{richMenuId}": "100/h",  # Delete rich menu
    "DELETE /v2/bot/richmenu/alias/{richMenuAliasId}": "100/h",  # Delete rich menu alias
    "GET /v2/bot/richmenu/progress/batch": "100/h",  # Status of rich menu batch control
    # 3 requests per hour
    "POST /v2/bot/richmenu/batch": "3/h",  # Replace or unlink linked rich menus in batches
    # 10 requests per second (since 2026-05-26)
    "GET /v2/bot/richmenu/list": "10/s",  # Get rich menu list
    # 200 requests per second
    "POST /v2/bot/message/multicast": "200/s",  # Send multicast message (since 2025-04-23)
    "GET /v2/bot/membership/subscription/{userId}": "200/s",  # Membership subscription status
    "GET /v2/bot/membership/list": "200/s",  # Membership plans being offered
    # 100 requests per second
    "POST /v2/bot/chat/loading/start": "100/s",  # Display a loading animation
    # 370 requests per second
    "POST /v2/oauth/accessToken": "370/s",  # Issue short-lived channel access token
    # Other API endpoints (reply, push, profile, ...), each on its own
    OTHER: "2000/s",
}

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


class RateLimitError(ValueError):
    """A limits table that does not make sense (the control API answers 400)."""


@dataclass(frozen=True)
class Limit:
    requests: int
    per_seconds: float

    @classmethod
    def parse(cls, value: Any, name: str = "limit") -> Limit | None:
        """`20` (per second), `"20/s"`, `"60/min"`, `"100/h"`; None = unlimited."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            requests, per = value, 1.0
        elif isinstance(value, str) and (match := _LIMIT_RE.match(value.lower())):
            requests = int(match.group(1))
            if match.group(2) not in _UNITS:
                raise RateLimitError(f"'{name}': unknown unit '{match.group(2)}' (s, min, h)")
            per = _UNITS[match.group(2)]
        else:
            raise RateLimitError(
                f"'{name}' must be requests per second (an integer), a string such as "
                '"20/s", "60/min" or "100/h", or null (unlimited)'
            )
        if requests < 1:
            raise RateLimitError(f"'{name}' must allow at least one request")
        return cls(requests, per)

    def text(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}.get(self.per_seconds)
        return f"{self.requests}/{unit}" if unit else f"{self.requests}/{self.per_seconds:g}s"


@dataclass(frozen=True)
class _Rule:
    key: str
    method: str | None  # None: any method
    segments: tuple[str, ...]
    limit: Limit | None

    @property
    def literal_segments(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))

    def matches(self, method: str, segments: tuple[str, ...]) -> bool:
        if self.method is not None and self.method != method:
            return False
        if len(segments) != len(self.segments):
            return False
        return all(
            t.startswith("{") or t == s for t, s in zip(self.segments, segments, strict=True)
        )


def _split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def _rule(key: str, limit: Limit | None) -> _Rule:
    method, _, path = key.partition(" ")
    if not path:
        method, path = "", method
    method = method.upper()
    if method and method not in _METHODS:
        raise RateLimitError(f"'{key}': unknown HTTP method {method}")
    if not path.startswith("/"):
        raise RateLimitError(f'\'{key}\' must be "METHOD /path", "/path" or "*"')
    return _Rule(key, method or None, _split(path), limit)


def parse_limits(table: Mapping[str, Any]) -> dict[str, Limit | None]:
    out: dict[str, Limit | None] = {}
    for key, value in table.items():
        if key != OTHER:
            _rule(key, None)  # validate the key
        out[key] = Limit.parse(value, key)
    return out


def settings_from_json(body: Any) -> tuple[bool, dict[str, Any] | None]:
    """Parse `{"enabled": true, "limits": {...} | null}` (the body of `PUT
    /_emulator/rate_limits`) into `(enabled, limits)`; raises `RateLimitError`."""
    if not isinstance(body, dict):
        raise RateLimitError("the rate-limit settings must be a JSON object")
    unknown = set(body) - {"enabled", "limits"}
    if unknown:
        raise RateLimitError(f"unknown rate-limit setting(s): {', '.join(sorted(unknown))}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RateLimitError("'enabled' must be true or false")
    limits = body.get("limits")
    if limits is not None:
        if not isinstance(limits, dict):
            raise RateLimitError(
                "'limits' must be an object such as {\"POST /v2/bot/message/push\": 20} or null"
            )
        parse_limits(limits)
    return enabled, limits


class _Bucket:
    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.requests)
        self.updated = now
        self.allowed = 0
        self.limited = 0

    def take(self, now: float) -> bool:
        rate = self.limit.requests / self.limit.per_seconds
        self.tokens = min(float(self.limit.requests), self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.allowed += 1
            return True
        self.limited += 1
        return False


class RateLimiter:
    """Token buckets per endpoint. `limits` override LINE's table (`LINE_RATE_LIMITS`) key by
    key: "METHOD /path/{param}", "/path" (every method) or "*" (every other endpoint, each
    with its own bucket); a value of None makes that endpoint unlimited."""

    def __init__(
        self,
        enabled: bool = False,
        limits: Mapping[str, Any] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._enabled = False
        self._overrides: dict[str, Limit | None] = {}
        self._table: dict[str, Limit | None] = {}
        self._rules: list[_Rule] = []
        self._other: Limit | None = None
        self._buckets: dict[str, _Bucket] = {}
        self.configure(enabled, limits)

    @property
    def enabled(self) -> bool:
        with self._lock:
            return self._enabled

    def configure(self, enabled: bool, limits: Mapping[str, Any] | None = None) -> None:
        """Switch on or off with LINE's table plus `limits`; every bucket starts full."""
        overrides = parse_limits(limits or {})
        table: dict[str, Limit | None] = {
            **{key: Limit.parse(value, key) for key, value in LINE_RATE_LIMITS.items()},
            **overrides,
        }
        rules = [_rule(key, limit) for key, limit in table.items() if key != OTHER]
        # Most literal segments first; a method-specific rule before an any-method one.
        rules.sort(key=lambda r: (-r.literal_segments, r.method is None))
        with self._lock:
            self._enabled = enabled
            self._overrides = overrides
            self._table = table
            self._rules = rules
            self._other = table.get(OTHER)
            self._buckets = {}

    def reset(self) -> None:
        """Refill every bucket and zero the counters (the table stays)."""
        with self._lock:
            self._buckets = {}

    def endpoint(
        self, method: str, path: str, route: str | None = None
    ) -> tuple[str, Limit | None]:
        """The bucket key and limit of a request. `route` is the matched route's template
        (e.g. `/v2/bot/profile/{user_id}`), so paths with ids share their endpoint's bucket."""
        method = method.upper()
        segments = _split(path)
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, segments):
                    return f"{method} /{'/'.join(rule.segments)}", rule.limit
            return f"{method} {route or path}", self._other

    def allow(self, method: str, path: str, route: str | None = None) -> bool:
        """Take a token for this request; False when its endpoint is over the limit."""
        if not self.enabled:
            return True
        key, limit = self.endpoint(method, path, route)
        if limit is None:
            return True
        with self._lock:
            bucket = self._buckets.get(key)
            now = self._now()
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[key] = _Bucket(limit, now)
            return bucket.take(now)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            now = self._now()
            endpoints = {}
            for key, bucket in self._buckets.items():
                rate = bucket.limit.requests / bucket.limit.per_seconds
                tokens = min(
                    float(bucket.limit.requests), bucket.tokens + (now - bucket.updated) * rate
                )
                endpoints[key] = {
                    "limit": bucket.limit.text(),
                    "allowed": bucket.allowed,
                    "limited": bucket.limited,
                    "tokens": round(tokens, 3),
                }
            return {
                "enabled": self._enabled,
                "limits": {k: v.text() if v else None for k, v in self._table.items()},
                "overrides": {k: v.text() if v else None for k, v in self._overrides.items()},
                "source": SOURCE,
                "endpoints": endpoints,
                "limited_total": sum(b.limited for b in self._buckets.values()),
            }
