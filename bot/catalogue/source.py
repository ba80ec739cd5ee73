"""Where things are in the YAML: documents with their source text and line/column lookups.

ruamel.yaml's round-trip loader keeps 0-based marks on every mapping and sequence
(`lc.key(k)`, `lc.value(k)`, `lc.item(i)`); `Locator` turns a path of keys and indices into
the 1-based `line:col` that `Problem` prints. A document that failed validation may still be
linted without the parts its problems are about (`Pruned`, made by `salvage`): its locator
then maps the paths of what is left back to the YAML.
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


@dataclass(frozen=True)
class Pruned:
    """The parts left out of a document so that the rest passes its model.

    `paths` are paths in the YAML (`root`). The model validated without them holds paths of
    its own: a list that lost an item has the later items one place up, which `original`
    undoes.
    """

    root: Any
    paths: frozenset[Path_]

    def original(self, path: Sequence[PathItem]) -> Path_:
        """The YAML path of the node at `path` of what was left."""
        out: list[PathItem] = []
        node = self.root
        for item in path:
            if isinstance(node, list) and isinstance(item, int):
                here = tuple(out)
                gone = {p[-1] for p in self.paths if len(p) == len(out) + 1 and p[:-1] == here}
                kept = [i for i in range(len(node)) if i not in gone]
                item = kept[item] if 0 <= item < len(kept) else item + len(node) - len(kept)
            out.append(item)
            found, node = child(node, item)
            if not found:
                node = None
        return tuple(out)

    def intact(self, path: Sequence[PathItem]) -> bool:
        """Nothing at, inside or around `path` (a path of what was left) was left out."""
        here = self.original(path)
        size = len(here)
        return not any(p[:size] == here or here[: len(p)] == p for p in self.paths)


@dataclass
class Document:
    """One YAML document of one file, validated (or, with `pruned`, what of it could be)."""

    file: str
    kind: str
    node: CommentedMap  # the round-trip node: positions for every problem
    model: Model
    line: int  # 1-based position of the document's first key
    col: int
    text: str  # the document's own source text
    pruned: Pruned | None = None  # what was left out of a document with problems

    @property
    def name(self) -> str:
        value = self.node.get(self.kind)
        return value if isinstance(value, str) else ""

    @property
    def locator(self) -> Locator:
        return Locator(self.file, self.node, (self.line - 1, self.col - 1), self.pruned)


@dataclass
class Locator:
    """Positions inside one document; every position printed is 1-based.

    With `pruned`, the paths given are paths of what was left of the document (see `Pruned`).
    """

    file: str
    root: Any
    origin: tuple[int, int] = (0, 0)
    pruned: Pruned | None = None
    _cache: dict[Path_, tuple[int, int]] = field(default_factory=dict, repr=False)

    def _yaml_path(self, path: Sequence[PathItem]) -> Sequence[PathItem]:
        return path if self.pruned is None else self.pruned.original(path)

    def intact(self, path: Sequence[PathItem]) -> bool:
        """Nothing at, inside or around `path` was left out: checks of the node as a whole
        (of several of its keys or items) can be trusted."""
        return self.pruned is None or self.pruned.intact(path)

    @property
    def complete(self) -> bool:
        """Nothing of the document was left out: a key it lacks was not written (or written
        with a typo, an unknown key that was left out)."""
        return self.pruned is None

    def number(self, path: Sequence[PathItem]) -> int:
        """The 1-based position in its list, as the YAML has it, of the item at `path`."""
        last = self._yaml_path(path)[-1]
        return int(last) + 1

    def mark(self, path: Sequence[PathItem], key: bool = False) -> tuple[int, int]:
        """0-based mark of the deepest node of `path` that exists.

        With `key=True` and a path ending in a mapping key, the key's own position (used for
        an unknown key); otherwise the value's position.
        """
        path = self._yaml_path(path)
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
        path = self._yaml_path(path)
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
        return {_plain_key(k): plain(v) for k, v in node.items()}
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


def _plain_key(key: Any) -> Any:
    """A mapping key as a plain value that can still be a key (`? [a, b]` is a list in YAML)."""
    value = plain(key)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return str(value)
    return value
