"""Durations written as `30m`, `24h`, `7d` (also `90s`, `2w`), at most 100 years."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A hundred years: longer than any wait or look-back means, and `now` ± it stays a date
# (a timedelta alone overflows at 999,999,999 days, `now - 99999d` before year 1).
MAX_DURATION = timedelta(days=36500)
DURATION_PATTERN = r"^\s*\d+\s*[smhdw]\s*$"
_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if abs(value) > MAX_DURATION:
            raise ValueError(f"the duration {value} is too long: at most 36500d (100 years)")
        return value
    if isinstance(value, str):
        match = _RE.match(value)
        if match:
            amount, unit = int(match.group(1)), match.group(2)
            if amount * _SECONDS[unit] > MAX_DURATION.total_seconds():
                raise ValueError(
                    f"the duration {value.strip()!r} is too long: at most 36500d (100 years)"
                )
            return timedelta(**{_UNITS[unit]: amount})
    raise ValueError(f"not a duration: {value!r} (write e.g. 30m, 24h, 7d)")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30m", "24h", "7d"]}
    ),
]
