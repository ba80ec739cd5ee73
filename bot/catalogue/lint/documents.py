"""Lint of the documents that are neither flows, sequences, keywords nor rich menus:
`fields:`, `broadcast:`, `event:` and `segment:` documents."""

from __future__ import annotations

from collections.abc import Iterator

from bot.catalogue.lint.base import LinterBase, number_text, value_problem
from bot.catalogue.models import (
    BroadcastDoc,
    Condition,
    EventDoc,
    FieldsDoc,
    SegmentCondition,
    SegmentDoc,
    leaves,
)
from bot.catalogue.source import Locator, PathItem


class DocumentLint(LinterBase):
    def fields(self, loc: Locator, doc: FieldsDoc) -> None:
        for name, definition in doc.fields.items():
            path: list[PathItem] = ["fields", name]
            if not loc.intact(path):
                continue  # a field with a problem of its own
            if (
                definition.min is not None
                and definition.max is not None
                and definition.min > definition.max
            ):
                self.report(
                    loc,
                    [*path, "max"],
                    f"field '{name}': max ({number_text(definition.max)}) is smaller than min"
                    f" ({number_text(definition.min)})",
                )
            if definition.default is not None:
                problem = value_problem(definition, definition.default)
                if problem is not None:
                    self.report(loc, [*path, "default"], f"field '{name}': default {problem}")

    def broadcast_doc(self, loc: Locator, broadcast: BroadcastDoc) -> None:
        if isinstance(broadcast.segment, str):
            self.segment_named(loc, ["segment"], broadcast.segment)
        else:
            self.condition(loc, ["segment"], broadcast.segment)
        for index, message in enumerate(broadcast.messages):
            self.message(loc, ["messages", index], message)

    def event_doc(self, loc: Locator, event: EventDoc) -> None:
        if event.when is not None:
            self.condition(loc, ["when"], event.when)
        self.actions(loc, ["do"], event.do)

    def segment_doc(self, loc: Locator, segment: SegmentDoc) -> None:
        self.condition(loc, ["condition"], segment.condition)
        cycle = self._segment_cycle(segment.segment, (segment.segment,))
        if cycle:
            self.report(
                loc,
                ["segment"],
                f"segment '{segment.segment}' refers to itself ({' → '.join(cycle)})",
            )

    def _segment_cycle(self, name: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        """The chain of `{segment: …}` references from `name` back to `path[0]`, if any."""
        segment = self.catalogue.segments.get(name)
        if segment is None:
            return None
        for ref in _segment_refs(segment.condition):
            if ref == path[0]:
                return (*path, ref)
            if ref not in path:
                found = self._segment_cycle(ref, (*path, ref))
                if found:
                    return found
        return None


def _segment_refs(condition: Condition) -> Iterator[str]:
    """The segments a condition names, at any depth."""
    return (c.segment for c in leaves(condition) if isinstance(c, SegmentCondition))
