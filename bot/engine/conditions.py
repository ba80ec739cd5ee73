"""The condition language evaluated for one friend (segments compile the same language to SQL)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

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
    TagCondition,
)
from bot.engine.friend_record import FriendRecord


def evaluate(condition: Condition, record: FriendRecord) -> bool:
    if isinstance(condition, TagCondition):
        return condition.tag in record.tags
    if isinstance(condition, FieldCondition):
        return field_matches(condition, record.fields.get(condition.field))
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
    if isinstance(
        condition, ClickedCondition | InSequenceCondition | RouteCondition | AudienceCondition
    ):
        # Link clicks, sequences, routes and audiences are recorded by later features;
        # until they exist no friend matches them (check warns about their use).
        return False
    raise TypeError(f"unknown condition {type(condition).__name__}")


def _comparable(value: Any, operand: Any) -> tuple[Any, Any]:
    """Bring a stored value and a YAML operand to comparable types."""
    if (
        isinstance(value, datetime)
        and isinstance(operand, date)
        and not isinstance(operand, datetime)
    ):
        return value.date(), operand
    if isinstance(value, datetime) and isinstance(operand, datetime) and operand.tzinfo is None:
        return value.replace(tzinfo=None), operand
    if isinstance(value, bool) or isinstance(operand, bool):
        return value, operand
    if isinstance(value, int | float) and isinstance(operand, int | float):
        return float(value), float(operand)
    return value, operand


def field_matches(condition: FieldCondition, value: Any) -> bool:
    op = condition.operator
    operand = condition.operand
    if op == "exists":
        return (value is not None) == bool(operand)
    if value is None:
        return op == "ne" and operand is not None
    try:
        if op == "eq":
            left, right = _comparable(value, operand)
            return bool(left == right)
        if op == "ne":
            left, right = _comparable(value, operand)
            return bool(left != right)
        if op == "in":
            return any(_eq(value, item) for item in operand)
        if op == "between":
            low, high = operand
            left, low_c = _comparable(value, low)
            _, high_c = _comparable(value, high)
            return bool(low_c <= left <= high_c)
        left, right = _comparable(value, operand)
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


def _eq(value: Any, item: Any) -> bool:
    left, right = _comparable(value, item)
    return bool(left == right)
