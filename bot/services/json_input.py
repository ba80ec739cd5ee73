"""JSON as the use cases take it: an object, within a size and a nesting depth, whose numbers
are numbers (Python's `json` reads `NaN`, `Infinity` and `1e400`, which no other JSON reader
does and no field can hold).

The admin API parses every request body with `parse_object` (`InvalidInput`, so a 422 naming
the problem, never a 500 from a parser that recursed too deep); `too_deep` also bounds parts
of a body stored as they are (an outside event's `properties`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from bot.services.errors import InvalidInput

MAX_BODY_BYTES = 1024 * 1024  # a JSON body (an audience's ids may also come as a text file)
MAX_DEPTH = 64  # objects and arrays inside each other


def size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is beyond the range of a number")
    return number


def parse_object(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The JSON object `raw` holds; InvalidInput saying what is wrong with it."""
    if len(raw) > max_bytes:
        raise InvalidInput(
            f"the body is {size_text(len(raw))}; a JSON body may be at most {size_text(max_bytes)}"
        )
    try:
        payload = json.loads(raw, parse_constant=_constant, parse_float=_float)
    except RecursionError as exc:  # Python's parser recurses once per level
        raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # not JSON, not UTF-8, NaN, 1e400, an integer of 4,300+ digits
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the body must be a JSON object")
    where = too_deep(payload, MAX_DEPTH)
    if where is not None:
        raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels (at {where})")
    return payload


def too_deep(value: Any, limit: int, path: str = "") -> str | None:
    """Where `value` nests objects and arrays more than `limit` deep (None: it does not);
    read without recursion, however deep it is."""
    if not isinstance(value, dict | list):
        return None
    # Each entry: a container, its depth (the outermost is 0), and its path as a linked
    # (key, parent) pair, so a wide body costs no copies of paths.
    stack: list[tuple[Any, int, Any]] = [(value, 0, (path, None) if path else None)]
    while stack:
        node, depth, trail = stack.pop()
        if depth >= limit:
            return _path(trail)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend(
            (sub, depth + 1, (str(key), trail))
            for key, sub in items
            if isinstance(sub, dict | list)
        )
    return None


def _path(trail: Any) -> str:
    parts: list[str] = []
    while trail is not None:
        key, trail = trail
        parts.append(key)
    parts.reverse()
    shown = ".".join(parts[:8])
    return f"{shown}… ({len(parts)} levels)" if len(parts) > 8 else shown
