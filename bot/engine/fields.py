"""Typed field values: parsing what a friend typed, and storing values in typed columns."""

from __future__ import annotations

import math
import re
import sys
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalogue.models import MAX_INTEGER, FieldDef
from bot.catalogue.text import normalise

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9]{10,15}$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日")
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


class InvalidValue(ValueError):
    """What the friend typed does not fit the expected type."""


def parse_input(kind: str, raw: str, tz: ZoneInfo) -> Any:
    """Parse typed text as an input of `kind`; raises InvalidValue."""
    text = normalise(raw)
    if not text:
        raise InvalidValue("empty")
    if kind == "text":
        return raw.strip()
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise InvalidValue("not an integer")
        return int(text)
    if kind == "number":
        try:
            number = float(text.replace(",", ""))
        except ValueError as exc:
            raise InvalidValue("not a number") from exc
        if not math.isfinite(number):  # float() takes "nan" and "inf"
            raise InvalidValue("not a number")
        return number
    if kind == "email":
        if not EMAIL.match(text):
            raise InvalidValue("not an e-mail address")
        return text
    if kind == "phone":
        digits = re.sub(r"[\s\-()]", "", text)
        if not PHONE.match(digits):
            raise InvalidValue("not a phone number")
        return digits
    if kind == "date":
        return parse_date(text)
    if kind == "datetime":
        return parse_datetime(text, tz)
    raise InvalidValue(f"unknown input type {kind}")


def parse_date(text: str) -> date:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidValue("not a date")


def parse_datetime(text: str, tz: ZoneInfo) -> datetime:
    """A local date-time in the account's zone (as LINE's picker sends it) → aware UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise InvalidValue("not a date and time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def coerce(definition: FieldDef, value: Any, tz: ZoneInfo) -> Any:
    """A value for a field of this definition (from YAML, the API or an answer).

    Raises InvalidValue for anything that does not fit, never another exception: the admin
    API turns it into a 422, an answer into a re-ask."""
    if value is None:
        return None
    if isinstance(value, list | dict):
        raise InvalidValue(f"expected a single value, got a {type(value).__name__}")
    try:
        return _coerce(definition, value, tz)
    except InvalidValue:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidValue(f"not a valid {definition.type}") from exc


def _coerce(definition: FieldDef, value: Any, tz: ZoneInfo) -> Any:
    kind = definition.type
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            raise InvalidValue("expected a number")
        if isinstance(value, str):
            value = parse_input(kind, value, tz)
        if not isinstance(value, int | float):
            raise InvalidValue("expected a finite number")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue("expected a finite number")
        if kind == "integer" and abs(value) > MAX_INTEGER:
            # Stored as a double for segments: beyond 2**53 it would not be the same integer.
            raise InvalidValue(f"must be between -{MAX_INTEGER} and {MAX_INTEGER}")
        if kind == "number" and abs(value) > sys.float_info.max:  # an int beyond a double
            raise InvalidValue("expected a finite number")
        number: int | float = int(value) if kind == "integer" else float(value)
        if kind == "integer" and number != value:
            raise InvalidValue("expected an integer")
        if definition.min is not None and number < definition.min:
            raise InvalidValue(f"must be at least {definition.min:g}")
        if definition.max is not None and number > definition.max:
            raise InvalidValue(f"must be at most {definition.max:g}")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and normalise(value).lower() in ("true", "yes", "はい", "1"):
            return True
        if isinstance(value, str) and normalise(value).lower() in ("false", "no", "いいえ", "0"):
            return False
        raise InvalidValue("expected true or false")
    if kind == "choice":
        if not isinstance(value, str | int) or str(value) not in (definition.choices or []):
            raise InvalidValue(f"must be one of {', '.join(definition.choices or [])}")
        return str(value)
    if kind == "date":
        if isinstance(value, datetime):
            return value.astimezone(tz).date()
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise InvalidValue("expected a date (YYYY-MM-DD)")
        return parse_date(normalise(value))
    if kind == "datetime":
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
        if not isinstance(value, str):
            raise InvalidValue("expected a date and time (YYYY-MM-DD HH:MM)")
        return parse_datetime(normalise(value), tz)
    if not isinstance(value, str):
        raise InvalidValue(f"expected text for a {kind} field")
    if kind in ("email", "phone"):
        return parse_input(kind, value, tz)
    return value


def to_json(value: Any) -> Any:
    """A field value as JSON (dates and times as ISO 8601 text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    if kind == "date":
        return date.fromisoformat(str(value))
    return value


def typed_columns(kind: str, value: Any) -> dict[str, Any]:
    """The typed columns a value fills, so segments can compare in SQL."""
    columns: dict[str, Any] = {"value_number": None, "value_text": None, "value_datetime": None}
    if kind in ("integer", "number") or isinstance(value, bool):
        columns["value_number"] = float(value)
    elif kind == "datetime":
        columns["value_datetime"] = value
    elif kind == "date":
        columns["value_datetime"] = datetime(value.year, value.month, value.day, tzinfo=UTC)
        columns["value_text"] = value.isoformat()
    else:
        columns["value_text"] = str(value)
    return columns
