"""Bounds on the YAML of a flows folder: a file's size, how deep it nests, and how far its
aliases expand, each refused with a located problem before it can cost time or memory.

YAML aliases are legitimate (`&base` / `<<: *base`), but each `*name` stands for the whole
node it names: nine levels of nine aliases (the "billion laughs") are a few hundred bytes
that stand for 387 million values, which the loader would copy out one by one. ruamel
composes an alias as the very node it names, so the composed document is a graph as small
as the text: `BoundedComposer` counts what it expands to (each node's size computed once)
and refuses it before anything is constructed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner

MAX_FILE_BYTES = 1024 * 1024  # a flows file; a catalogue is many small files, not one huge one
MAX_DEPTH = 100  # nested mappings and sequences (a flex message nests a few dozen at most)
MAX_EXPANDED_NODES = 200_000  # values one document may stand for, aliases expanded


class YamlBoundsError(MarkedYAMLError):
    """A document beyond the bounds; `problem` says which, in plain words."""


def size_text(size: int) -> str:
    """A file size as people read it: 1.5 MB, 340 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.0f} KB"


def file_too_large(size: int) -> str | None:
    """Why a flows file of `size` bytes is refused (None: it is not)."""
    if size <= MAX_FILE_BYTES:
        return None
    return (
        f"the file is {size_text(size)}; a flows file may be at most "
        f"{size_text(MAX_FILE_BYTES)} (split it into several files)"
    )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: Node, budget: int = MAX_EXPANDED_NODES) -> None:
    """Raise `YamlBoundsError` if the document stands for more than `budget` nodes with its
    aliases expanded, or an alias stands inside the node it names (an endless document).

    Each node's expanded size is computed once (an alias is the node it names), so this costs
    what the text costs, however far the aliases would expand."""
    sizes: dict[int, int] = {}  # id(node) → expanded size, capped at budget + 1
    uses: Counter[int] = Counter()  # id(node) → how many parents name it
    started: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(total, budget + 1)
            continue
        if key in sizes:
            continue
        if key in started:  # met again below itself: `&a [*a]`
            raise YamlBoundsError(
                problem=f"the alias '*{node.anchor}' stands inside the node it names, "
                "so the document never ends",
                problem_mark=node.start_mark,
            )
        started.add(key)
        stack.append((node, True))
        for child in _children(node):
            uses[id(child)] += 1
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] > budget:
        blamed = _blamed(root, sizes, uses)
        raise YamlBoundsError(
            problem=_too_many(blamed, root, sizes, uses, budget), problem_mark=blamed.start_mark
        )


def _nodes(root: Node) -> list[Node]:
    """Every node of the composed graph once."""
    seen: dict[int, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(_children(node))
    return list(seen.values())


def _blamed(root: Node, sizes: dict[int, int], uses: Counter[int]) -> Node:
    """The anchored node whose repetition costs most (the document itself if none)."""
    repeated = [n for n in _nodes(root) if uses[id(n)] > 1 and n.anchor is not None]
    return max(repeated, key=lambda n: sizes[id(n)] * uses[id(n)], default=root)


def _too_many(
    blamed: Node, root: Node, sizes: dict[int, int], uses: Counter[int], budget: int
) -> str:
    if blamed is root:
        return (
            f"the document holds more than {budget:,} values; split it into several "
            "documents or files"
        )
    size = sizes[id(blamed)]
    stands = f"more than {budget:,}" if size > budget else f"{size:,}"
    return (
        f"YAML aliases expand this document to more than {budget:,} values: "
        f"'&{blamed.anchor}' stands for {stands} of them and appears {uses[id(blamed)]} "
        "times; write the values out, or use fewer aliases"
    )


class BoundedScanner(RoundTripScanner):
    """ruamel's round-trip scanner, refusing `[`/`{` nested beyond `MAX_DEPTH`.

    The composer has its own depth limit (`YAML.max_depth`), but the scanner reads up to
    1,024 characters ahead of it, and each `[` it reads makes the next ones slower: a line
    of thousands of `[` took seconds before the composer saw the hundredth."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise MaxDepthExceededError(
                problem="maximum depth of data structure exceeded",
                problem_mark=self.reader.get_mark(),
            )
        super().fetch_flow_collection_start(TokenClass, to_push)


class BoundedComposer(Composer):
    """ruamel's composer, refusing a document whose aliases expand beyond the budget."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            check_expansion(node)
        return node


def bounds_problem(exc: MarkedYAMLError) -> str | None:
    """The message of an error these bounds raised (None for any other YAML error)."""
    if isinstance(exc, YamlBoundsError):
        return str(exc.problem)
    if isinstance(exc, MaxDepthExceededError):  # ruamel's own, raised at `max_depth`
        return (
            f"the YAML nests more than {MAX_DEPTH} levels deep (mappings and lists inside "
            "each other); flatten it"
        )
    return None
