"""How large a segment may be, and why: it becomes one SQL statement, and beyond these bounds
that statement stops being one a database answers in reasonable time (or at all).

- at most `MAX_NESTING` levels of `all`/`any`/`not` (each level is a nested boolean, and
  SQLite refuses an expression nested 1,000 deep);
- at most `MAX_CONDITIONS` conditions, named segments counted with theirs: each is an EXISTS,
  and PostgreSQL plans AND-ed EXISTS in time that grows steeply with their number (measured:
  100 in two seconds, 200 in forty);
- at most `MAX_IN_VALUES` values across the `in` lists: each is a comparison (two for a date
  against a date-time field) in one OR, which SQLite parses as deep as it is long (measured:
  400 date-like values compile, 500 do not).

`raw_problem` looks at the JSON as given, before it is parsed into a condition (nesting, and
numbers that are not: NaN, Infinity, integers beyond a double); `size_problem` at the parsed
condition with its named segments expanded.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from bot.catalogue.models import (
    AllCondition,
    AnyCondition,
    Condition,
    FieldCondition,
    NotCondition,
    SegmentCondition,
)

MAX_NESTING = 10
MAX_CONDITIONS = 100
MAX_IN_VALUES = 200
_COMPOUND = ("all", "any", "not")

Expand = Callable[[str, tuple[str, ...]], Condition]


def raw_problem(value: Any) -> str | None:
    """What is out of bounds in a condition's JSON form (None: nothing), named by its path."""
    stack: list[tuple[Any, str, int]] = [(value, "segment", 0)]
    while stack:
        node, path, level = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return f"{path}: {node} is not a number"
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) > sys.float_info.max:
            return f"{path}: the number is too large ({len(str(abs(node)))} digits)"
        if isinstance(node, Mapping):
            for key, sub in node.items():
                deeper = level + (key in _COMPOUND)
                if deeper > MAX_NESTING:
                    return _too_deep(f"{path}.{key}")
                stack.append((sub, f"{path}.{key}", deeper))
        elif isinstance(node, list | tuple):
            stack.extend((sub, f"{path}.{index}", level) for index, sub in enumerate(node))
    return None


def size_problem(condition: Condition, expand: Expand) -> str | None:
    """What is out of bounds in a parsed condition, `{segment: …}` expanded with `expand`
    (which raises for an unknown or self-referring segment); None when it is within them."""
    conditions = values = 0
    stack: list[tuple[Condition, int, tuple[str, ...]]] = [(condition, 0, ())]
    while stack:
        node, level, seen = stack.pop()
        if level > MAX_NESTING:
            return _too_deep(None)
        if isinstance(node, SegmentCondition):
            stack.append((expand(node.segment, seen), level, (*seen, node.segment)))
        elif isinstance(node, AllCondition | AnyCondition):
            subs = node.all if isinstance(node, AllCondition) else node.any
            stack.extend((sub, level + 1, seen) for sub in subs)
        elif isinstance(node, NotCondition):
            stack.append((node.not_, level + 1, seen))
        else:
            conditions += 1
            if isinstance(node, FieldCondition) and node.operator == "in":
                values += len(node.operand or [])
        if conditions > MAX_CONDITIONS:
            return (
                f"the segment holds more than {MAX_CONDITIONS} conditions (named segments "
                f"counted with theirs); at most {MAX_CONDITIONS}"
            )
        if values > MAX_IN_VALUES:
            return (
                f"the segment's `in` lists hold more than {MAX_IN_VALUES} values in all; "
                f"at most {MAX_IN_VALUES}"
            )
    return None


def _too_deep(where: str | None) -> str:
    at = f" (at {where})" if where else " (named segments counted as they expand)"
    return f"the segment nests all/any/not more than {MAX_NESTING} levels deep{at}"
