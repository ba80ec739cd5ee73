"""A condition from what the user wrote: a model, its YAML/JSON form, or the name of a segment
the catalogue defines (`resolve`); named segments expanded to their leaves (`expanded`), a
segment unknown or referring to itself, or beyond the bounds of `bot.segments.bounds`, being a
`SegmentError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

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
    leaves,
)
from bot.segments.bounds import MAX_NESTING, raw_problem, size_problem

CONDITION_TYPES = (
    TagCondition,
    FieldCondition,
    FollowedWithinCondition,
    ClickedCondition,
    AnsweredCondition,
    InSequenceCondition,
    RouteCondition,
    AudienceCondition,
    SegmentCondition,
    AllCondition,
    AnyCondition,
    NotCondition,
)

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


class SegmentError(ValueError):
    """A segment that is not a valid condition nor the name of a known segment."""


def resolve(condition_or_name: Any, catalogue: Any) -> Condition:
    """A condition from a model, its YAML/JSON form (a mapping or JSON text), or the name of
    a segment the catalogue defines, within the bounds of `bot.segments.bounds`; SegmentError
    says what is wrong."""
    condition = _resolve(condition_or_name, catalogue, seen=())
    # Every {segment: …} inside is known and acyclic (`named` raises), and the whole, named
    # segments expanded, is small enough to be one SQL statement.
    problem = size_problem(condition, lambda name, seen: named(name, catalogue, seen))
    if problem:
        raise SegmentError(problem)
    return condition


def expanded(condition: Condition, catalogue: Any, seen: tuple[str, ...]) -> Iterator[Condition]:
    """The leaf conditions, named segments expanded (unknown or self-referring: SegmentError)."""
    for leaf in leaves(condition):
        if isinstance(leaf, SegmentCondition):
            inner = named(leaf.segment, catalogue, seen)
            yield from expanded(inner, catalogue, (*seen, leaf.segment))
        else:
            yield leaf


# --------------------------------------------------------------------------- resolving


def _resolve(value: Any, catalogue: Any, seen: tuple[str, ...]) -> Condition:
    if isinstance(value, CONDITION_TYPES):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SegmentError(f"the segment is not valid JSON: {exc}") from exc
            except RecursionError as exc:  # Python's parser recurses once per level
                raise SegmentError(
                    "the segment's JSON nests too deep to read; all/any/not may nest at most "
                    f"{MAX_NESTING} levels"
                ) from exc
            except ValueError as exc:  # an integer of 4,300 digits or more
                raise SegmentError(f"the segment is not JSON stepline reads: {exc}") from exc
        else:
            return named(text, catalogue, seen)
    if not isinstance(value, Mapping):
        raise SegmentError(
            'a segment is a condition (a mapping such as {"tag": "X"}) '
            f"or the name of a segment, not {type(value).__name__}"
        )
    problem = raw_problem(value)  # before pydantic, which would recurse as deep as it nests
    if problem:
        raise SegmentError(problem)
    try:
        return _ADAPTER.validate_python(dict(value))
    except ValidationError as exc:
        raise SegmentError(f"not a valid condition: {_describe(exc)}") from exc


def named(name: str, catalogue: Any, seen: tuple[str, ...]) -> Condition:
    """The condition of the segment `name` (`seen`: the segments being expanded, to catch a
    cycle); SegmentError if unknown or self-referring."""
    segments = getattr(catalogue, "segments", None)
    if not name:
        raise SegmentError("a segment is a condition or the name of a segment, not empty text")
    if not isinstance(segments, Mapping) or name not in segments:
        known = sorted(segments) if isinstance(segments, Mapping) else []
        hint = f" (known: {', '.join(known)})" if known else ""
        raise SegmentError(f"unknown segment {name!r}{hint}")
    if name in seen:
        raise SegmentError(f"segment {name!r} refers to itself ({' → '.join([*seen, name])})")
    definition = segments[name]
    if not isinstance(definition, (*CONDITION_TYPES, Mapping, str)):
        # A `segment:` document: its condition under one of these keys.
        for attribute in ("condition", "when", "match", "segment"):
            inner = getattr(definition, attribute, None)
            if isinstance(inner, (*CONDITION_TYPES, Mapping)):
                definition = inner
                break
    return _resolve(definition, catalogue, (*seen, name))


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
