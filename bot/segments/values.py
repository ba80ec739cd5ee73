"""How a stored value compares in SQL, exactly as `bot.engine.conditions` compares it in
Python: a `field_values` row by the type it was stored with (`stored_matches`, one value kind
per typed column), an answer as its JSON value (`json_equals`).

Naive date-time operands are wall-clock times in the account's zone, exactly as Python
compares local times, daylight saving included (a wall time seen twice matches both instants,
a skipped one none). Assumed, as `FriendRecord.set_field` guarantees: a `field_values` row
always holds a value in the typed column of its type (a cleared field has no row).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_

from bot.catalogue.models import FieldCondition
from bot.engine.conditions import as_time
from bot.segments.dialects import CodePointOrder, JsonNumber, JsonString
from bot.segments.folding import Pred, fold_all, fold_any, negate

# Field types by the typed column that holds their value (see fields.typed_columns).
NUMERIC_TYPES = ("integer", "number", "boolean")
TIME_TYPES = ("date", "datetime")


# --------------------------------------------------------------------------- fields


def stored_matches(condition: FieldCondition, fv: Any, tz: ZoneInfo) -> Pred:
    """`field_matches` for a stored row, whatever its type (rows always hold a value)."""
    op, operand = condition.operator, condition.operand
    if op == "exists":
        return bool(operand)
    kinds: list[tuple[ColumnElement[bool], Pred]] = [
        (fv.c.type.in_(NUMERIC_TYPES), _Numeric(fv.c.value_number).match(op, operand)),
        (fv.c.type == "date", _Date(fv.c.value_datetime).match(op, operand)),
        (fv.c.type == "datetime", _DateTime(fv.c.value_datetime, tz).match(op, operand)),
        (
            fv.c.type.not_in(NUMERIC_TYPES + TIME_TYPES),
            _Text(fv.c.value_text).match(op, operand),
        ),
    ]
    if all(pred is True for _, pred in kinds):
        return True
    return fold_any(*(fold_all(is_kind, pred) for is_kind, pred in kinds))


class _Kind:
    """One way a value is stored; `compare` gives the SQL of `value <op> operand` as
    `_comparable` sees it, or False where Python's comparison is False or a TypeError."""

    def match(self, op: str, operand: Any) -> Pred:
        if op == "ne":
            return negate(self.compare("eq", operand))
        if op == "in":
            if not isinstance(operand, list | tuple):
                return False
            return fold_any(*(self.compare("eq", item) for item in operand))
        if op == "between":
            if not isinstance(operand, list | tuple) or len(operand) != 2:
                return False
            return self.between(operand[0], operand[1])
        if op in ("eq", "gt", "gte", "lt", "lte"):
            return self.compare(op, operand)
        raise ValueError(f"unknown operator {op}")

    def compare(self, op: str, operand: Any) -> Pred:
        raise NotImplementedError

    def between(self, low: Any, high: Any) -> Pred:
        raise NotImplementedError


class _Numeric(_Kind):
    """integer, number, boolean: `value_number` (booleans as 1/0, as Python compares them)."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        if isinstance(operand, int | float):  # bool is an int
            return _compare(self.column, op, float(operand))
        return False

    def between(self, low: Any, high: Any) -> Pred:
        if isinstance(low, int | float) and isinstance(high, int | float):
            return fold_all(self.compare("gte", low), self.compare("lte", high))
        return False


class _Text(_Kind):
    """text, choice, email, phone: `value_text`, ordered by code point as Python orders it."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        if not isinstance(operand, str):
            return False
        if op == "eq":
            return self.column == operand
        return _compare(CodePointOrder(self.column), op, operand)

    def between(self, low: Any, high: Any) -> Pred:
        if isinstance(low, str) and isinstance(high, str):
            return fold_all(self.compare("gte", low), self.compare("lte", high))
        return False


def _as_date(operand: Any) -> date | None:
    """What a date value is compared with: a date, or a date-time's own calendar date."""
    value = as_time(operand)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


class _Date(_Kind):
    """date: `value_datetime` holds midnight UTC of the date, so instants order like dates."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        day = _as_date(operand)
        if day is None:
            return False
        return _compare(self.column, op, datetime(day.year, day.month, day.day, tzinfo=UTC))

    def between(self, low: Any, high: Any) -> Pred:
        if _as_date(low) is None or _as_date(high) is None:
            return False
        return fold_all(self.compare("gte", low), self.compare("lte", high))


class _DateTime(_Kind):
    """datetime: `value_datetime` (UTC). An aware operand is an instant; a naive one is a
    wall-clock time in the account's zone; a date is the local calendar date."""

    def __init__(self, column: ColumnElement[Any], tz: ZoneInfo) -> None:
        self.column = column
        self.tz = tz

    @staticmethod
    def shape(operand: Any) -> str | None:
        value = as_time(operand)
        if isinstance(value, datetime):
            return "naive" if value.tzinfo is None else "aware"
        if isinstance(value, date):
            return "date"
        return None

    def compare(self, op: str, operand: Any) -> Pred:
        value = as_time(operand)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return _wall(self.column, op, value, self.tz)
            return _compare(self.column, op, value)
        if isinstance(value, date):
            return _local_date(self.column, op, value, self.tz)
        return False

    def between(self, low: Any, high: Any) -> Pred:
        # Python compares the value brought to the low end's shape with the high end:
        # mixed shapes (naive with aware, date with date-time) raise TypeError → False.
        shape = self.shape(low)
        if shape is None or shape != self.shape(high):
            return False
        return fold_all(self.compare("gte", low), self.compare("lte", high))


def _local_date(column: ColumnElement[Any], op: str, day: date, tz: ZoneInfo) -> Pred:
    """The instant's calendar date in `tz` compared with `day`, as wall-clock bounds."""
    start = datetime.combine(day, time())
    try:
        end: datetime | None = start + timedelta(days=1)
    except OverflowError:
        end = None
    if op == "eq":
        return fold_all(_wall(column, "gte", start, tz), _wall(column, "lt", end, tz))
    if op == "gt":
        return _wall(column, "gte", end, tz)
    if op == "gte":
        return _wall(column, "gte", start, tz)
    if op == "lt":
        return _wall(column, "lt", start, tz)
    if op == "lte":
        return _wall(column, "lt", end, tz)
    raise ValueError(f"unknown operator {op}")


def _wall(column: ColumnElement[Any], op: str, naive: datetime | None, tz: ZoneInfo) -> Pred:
    """Instants whose wall-clock time in `tz` compares `op` with the naive `naive`.

    Exact in every zone: a wall time repeated when clocks go back (01:30 twice) matches two
    instants, and between them the clock reads earlier; one skipped when they go forward
    (02:30) matches none, and the clock jumps past it at the transition. `naive=None` is a
    moment later than any stored one."""
    if naive is None:
        return op in ("lt", "lte")
    try:
        first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    except OverflowError:  # at the ends of datetime's range
        later = naive.year > 5000
        return op in ("lt", "lte") if later else op in ("gt", "gte")
    if first == second:
        return _compare(column, op, first)
    if first < second:  # repeated: [first, switch) reads ≥ naive, [switch, second) reads less
        switch = _transition(first, second, tz)
        if op == "eq":
            return or_(column == first, column == second)
        if op == "gt":
            return or_(and_(column > first, column < switch), column > second)
        if op == "gte":
            return or_(and_(column >= first, column < switch), column >= second)
        if op == "lt":
            return or_(column < first, and_(column >= switch, column < second))
        if op == "lte":
            return or_(column <= first, and_(column >= switch, column <= second))
        raise ValueError(f"unknown operator {op}")
    switch = _transition(second, first, tz)  # skipped: before the switch reads earlier
    if op == "eq":
        return False
    if op in ("gt", "gte"):
        return column >= switch
    if op in ("lt", "lte"):
        return column < switch
    raise ValueError(f"unknown operator {op}")


def _transition(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose UTC offset in `tz` differs from low's."""
    before = low.astimezone(tz).utcoffset()
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def _compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return column == value
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    raise ValueError(f"unknown operator {op}")


# --------------------------------------------------------------------------- answers (JSON)


def json_equals(column: ColumnElement[Any], value: Any) -> Pred:
    """`stored == value` as Python compares a JSON-loaded answer with a scalar."""
    if isinstance(value, str):
        return JsonString(column) == value
    if isinstance(value, int | float):  # numbers and booleans: 1 == 1.0 == True
        return JsonNumber(column) == float(value)
    return False
