"""How large a segment may be: nesting, conditions and `in` values, named segments counted as
they expand; numbers that are not ones and durations beyond 100 years; each a SegmentError
naming the problem, found before anything is compiled (or recursed into)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import TypeAdapter

from bot.catalogue.models import Condition
from bot.segments.bounds import MAX_CONDITIONS, MAX_IN_VALUES, MAX_NESTING
from bot.segments.resolving import SegmentError, resolve

ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)
NONE = SimpleNamespace(segments={})


def nested(levels: int, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    condition = leaf or {"tag": "a"}
    for level in range(levels):
        condition = {"not": condition} if level % 2 else {"all": [condition]}
    return condition


def named(**segments: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(
        segments={
            n: SimpleNamespace(condition=ADAPTER.validate_python(c)) for n, c in segments.items()
        }
    )


def refused(value: Any, catalogue: Any = NONE) -> str:
    with pytest.raises(SegmentError) as caught:
        resolve(value, catalogue)
    return str(caught.value)


def test_nesting_up_to_the_limit() -> None:
    assert MAX_NESTING == 10
    assert resolve(nested(10), NONE) is not None
    assert refused(nested(11)) == (
        "the segment nests all/any/not more than 10 levels deep "
        "(at segment.all.0.not.all.0.not.all.0.not.all.0.not.all.0.not.all)"
    )


def test_nesting_counts_named_segments_as_they_expand() -> None:
    catalogue = named(inner=nested(6))
    assert resolve(nested(4, {"segment": "inner"}), catalogue) is not None
    assert refused(nested(5, {"segment": "inner"}), catalogue) == (
        "the segment nests all/any/not more than 10 levels deep "
        "(named segments counted as they expand)"
    )


def test_a_thousand_levels_are_refused_without_recursing() -> None:
    deep = nested(5000)
    started = time.monotonic()
    assert "more than 10 levels deep" in refused(deep)
    assert refused('{"not": ' * 3000 + "}") == (
        "the segment's JSON nests too deep to read; all/any/not may nest at most 10 levels"
    )
    assert time.monotonic() - started < 1


def test_conditions_up_to_the_limit_named_segments_counted_with_theirs() -> None:
    assert MAX_CONDITIONS == 100
    assert resolve({"any": [{"tag": "a"}] * 100}, NONE) is not None
    assert refused({"any": [{"tag": "a"}] * 101}) == (
        "the segment holds more than 100 conditions (named segments counted with theirs); "
        "at most 100"
    )
    catalogue = named(fifty={"any": [{"tag": "a"}] * 50})
    assert resolve({"all": [{"segment": "fifty"}] * 2}, catalogue) is not None
    assert "more than 100 conditions" in refused(
        {"all": [{"segment": "fifty"}] * 2 + [{"tag": "b"}]}, catalogue
    )


def test_in_values_up_to_the_limit_across_the_segment() -> None:
    assert MAX_IN_VALUES == 200
    half = {"field": "memo", "in": [f"v{i}" for i in range(100)]}
    assert resolve({"any": [half, half]}, NONE) is not None
    assert refused({"any": [half, half, {"field": "age", "in": [1]}]}) == (
        "the segment's `in` lists hold more than 200 values in all; at most 200"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"all": [{"field": "age", "gt": float("nan")}]}, "segment.all.0.gt: nan is not a number"),
        ({"field": "age", "in": [1, float("-inf")]}, "segment.in.1: -inf is not a number"),
        ({"field": "age", "eq": 10**400}, "segment.eq: the number is too large (401 digits)"),
        ('{"field": "age", "lt": Infinity}', "segment.lt: inf is not a number"),
        (
            {"followed_within": "99999999999999d"},
            "not a valid condition: followed_within.followed_within: the duration "
            "'99999999999999d' is too long: at most 36500d (100 years)",
        ),
        (
            {"clicked": "coupon", "within": "5300w"},
            "not a valid condition: clicked.within: the duration '5300w' is too long",
        ),
    ],
)
def test_numbers_and_durations_that_are_not_ones(value: Any, message: str) -> None:
    assert refused(value).startswith(message)
