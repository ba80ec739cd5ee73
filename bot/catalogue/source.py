"""Where things are in the YAML: documents with their source text and line/column lookups.

ruamel.yaml's round-trip loader keeps 0-based marks on every mapping and sequence
(`lc.key(k)`, `lc.value(k)`, `lc.item(i)`); `Locator` turns a path of keys and indices into
the 1-based `line:col` that `Problem` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.catalogue.catalogue import Problem
from bot.catalogue.models import Model

PathItem = str | int
Path_ = tuple[PathItem, ...]


def mark_of(node: Any) -> tuple[int, int] | None:
    """The 0-based start of a mapping or sequence node, if ruamel recorded one."""
    lc = getattr(node, "lc", None)
    if lc is None or getattr(lc, "line", None) is None:
        return None
    return int(lc.line), int(lc.col)


def key_mark(node: CommentedMap, key: Any) -> tuple[int, int] | None:
    try:
        line, col = node.lc.key(key)
    except (KeyError, TypeError, AttributeError):
        return None
    return int(line), int(col)


def value_mark(node: CommentedMap, key: Any) -> tuple[int, int] | None:
    try:
        line, col = node.lc.value(key)
    except (KeyError, TypeError, AttributeError):
        return None
    return int(line), int(col)


def item_mark(node: CommentedSeq, index: int) -> tuple[int, int] | None:
    try:
        line, col = node.lc.item(index)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return int(line), int(col)


def child(node: Any, item: PathItem) -> tuple[bool, Any]:
    """(found, child) for a key of a mapping or an index of a sequence."""
    if isinstance(node, dict):
        if item in node:
            return True, node[item]
        return False, None
    if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
        return True, node[item]
    return False, None


@dataclass
class Document:
    """One YAML document of one file, validated."""

    file: str
    kind: str
    node: CommentedMap  # the round-trip node: positions for every problem
    model: Model
    line: int  # 1-based position of the document's first key
    col: int
    text: str  # the document's own source text

    @property
    def name(self) -> str:
        value = self.node.get(self.kind)
        return value if isinstance(value, str) else ""

    @property
    def locator(self) -> Locator:
        return Locator(self.file, self.node, (self.line - 1, self.col - 1))


@dataclass
class Locator:
    """Positions inside one document; every position printed is 1-based."""

    file: str
    root: Any
    origin: tuple[int, int] = (0, 0)
    _cache: dict[Path_, tuple[int, int]] = field(default_factory=dict, repr=False)

    def mark(self, path: Sequence[PathItem], key: bool = False) -> tuple[int, int]:
        """0-based mark of the deepest node of `path` that exists.

        With `key=True` and a path ending in a mapping key, the key's own position (used for
        an unknown key); otherwise the value's position.
        """
        node = self.root
        here = mark_of(node) or self.origin
        for index, item in enumerate(path):
            found, sub = child(node, item)
            if not found:
                break
            last = index == len(path) - 1
            if isinstance(node, CommentedMap):
                spot = key_mark(node, item) if (key and last) else value_mark(node, item)
            else:
                spot = item_mark(node, item)  # type: ignore[arg-type]
            if spot is None:
                break
            here = spot
            node = sub
        return here

    def node(self, path: Sequence[PathItem]) -> Any:
        """The YAML node at `path`, or None when it is not there."""
        node = self.root
        for item in path:
            found, node = child(node, item)
            if not found:
                return None
        return node

    def at(self, path: Sequence[PathItem], key: bool = False) -> tuple[int, int]:
        line, col = self.mark(path, key)
        return line + 1, col + 1

    def problem(self, path: Sequence[PathItem], message: str, key: bool = False) -> Problem:
        line, col = self.at(path, key)
        return Problem(self.file, line, col, message)

    def where(self, path: Sequence[PathItem], key: bool = False) -> str:
        line, col = self.at(path, key)
        return f"{self.file}:{line}:{col}"


def display_path(file: str) -> str:
    """A file as the user would type it: relative to the current folder when inside it."""
    path = Path(file)
    if not path.is_absolute():
        return file
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return file


def place(document: Document, path: Sequence[PathItem], other_file: str, key: bool = False) -> str:
    """How a problem in `other_file` names a place in `document`: `line 5` or `a.yaml:5:3`."""
    line, col = document.locator.at(path, key=key)
    if document.file == other_file:
        return f"line {line}"
    return f"{display_path(document.file)}:{line}:{col}"


def plain(node: Any) -> Any:
    """A round-trip tree as plain Python values (dict, list, str, int, float, bool, None, date)."""
    from datetime import date, datetime

    if isinstance(node, dict):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    type_name = type(node).__name__
    if isinstance(node, bool) or type_name == "ScalarBoolean":
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        return datetime(
            node.year,
            node.month,
            node.day,
            node.hour,
            node.minute,
            node.second,
            node.microsecond,
            node.tzinfo,
        )
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    return node
