"""The condition language evaluated for one friend (segments compile the same language to SQL)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalogue.models import (
    AllCondition,
    AnsweredCondition,
    AnyCondition,
    AudienceCondition,
    ClickedCondition,
    Condition,
    FieldCondition,
    FollowedWithinCondition,
    InSequenceCondition,
    NotCondition,
    RouteCondition,
    SegmentCondition,
    TagCondition,
)
from bot.engine.friend_record import FriendRecord


def evaluate(condition: Condition, record: FriendRecord) -> bool:
    if isinstance(condition, TagCondition):
        return condition.tag in record.tags
    if isinstance(condition, FieldCondition):
        return field_matches(condition, record.fields.get(condition.field), record.tz)
    if isinstance(condition, AllCondition):
        return all(evaluate(c, record) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return any(evaluate(c, record) for c in condition.any)
    if isinstance(condition, NotCondition):
        return not evaluate(condition.not_, record)
    if isinstance(condition, FollowedWithinCondition):
        followed = record.friend.followed_at
        return followed is not None and record.now - followed <= condition.followed_within
    if isinstance(condition, AnsweredCondition):
        spec = condition.answered
        answers = record.answers.get(spec.flow, {})
        if spec.step not in answers:
            return False
        return spec.value is None or answers[spec.step] == spec.value
    if isinstance(condition, InSequenceCondition):
        return record.in_sequence(condition.in_sequence)
    if isinstance(condition, ClickedCondition):
        return record.clicked(condition.clicked, condition.within)
    if isinstance(condition, RouteCondition):
        return record.friend.route == condition.route
    if isinstance(condition, AudienceCondition):
        return condition.audience in record.audiences
    if isinstance(condition, SegmentCondition):
        # `check` guarantees the segment exists and refers to itself nowhere.
        segment = record.catalogue.segments.get(condition.segment)
        return segment is not None and evaluate(segment.condition, record)
    raise TypeError(f"unknown condition {type(condition).__name__}")


def as_time(operand: Any) -> Any:
    """A YAML operand written as text ("2026-12-01", "2026-12-01 10:00") as a date/datetime."""
    if isinstance(operand, str):
        try:
            parsed = datetime.fromisoformat(operand.strip())
        except ValueError:
            return operand
        return parsed.date() if len(operand.strip()) == 10 else parsed
    return operand


def _comparable(value: Any, operand: Any, tz: ZoneInfo) -> tuple[Any, Any]:
    """Bring a stored value and a YAML operand to comparable types.

    Stored datetimes are UTC; operands without a zone mean the account's time zone, so a
    reservation at 08:00 JST on 1 December is `{gte: 2026-12-01}`."""
    if isinstance(value, datetime | date):
        operand = as_time(operand)
    if isinstance(value, datetime):
        local = value.astimezone(tz)
        if isinstance(operand, datetime):
            if operand.tzinfo is None:
                return local.replace(tzinfo=None), operand
            return value, operand
        if isinstance(operand, date):
            return local.date(), operand
    elif isinstance(value, date) and isinstance(operand, datetime):
        return value, operand.date()
    if isinstance(value, bool) or isinstance(operand, bool):
        return value, operand
    if isinstance(value, int | float) and isinstance(operand, int | float):
        return float(value), float(operand)
    return value, operand


def field_matches(condition: FieldCondition, value: Any, tz: ZoneInfo) -> bool:
    op = condition.operator
    operand = condition.operand
    if op == "exists":
        return (value is not None) == bool(operand)
    if value is None:
        return op == "ne" and operand is not None
    try:
        if op == "eq":
            left, right = _comparable(value, operand, tz)
            return bool(left == right)
        if op == "ne":
            left, right = _comparable(value, operand, tz)
            return bool(left != right)
        if op == "in":
            return any(_eq(value, item, tz) for item in operand)
        if op == "between":
            low, high = operand
            left, low_c = _comparable(value, low, tz)
            _, high_c = _comparable(value, high, tz)
            return bool(low_c <= left <= high_c)
        left, right = _comparable(value, operand, tz)
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        if op == "lte":
            return bool(left <= right)
    except TypeError:
        return False  # incomparable types (text vs number) never match
    raise ValueError(f"unknown operator {op}")


def _eq(value: Any, item: Any, tz: ZoneInfo) -> bool:
    left, right = _comparable(value, item, tz)
    return bool(left == right)
