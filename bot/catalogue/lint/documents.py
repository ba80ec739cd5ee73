"""Lint of the documents that are neither flows, sequences, keywords nor rich menus:
`fields:`, `links:`, `broadcast:`, `event:` and `segment:` documents."""

from __future__ import annotations

from collections.abc import Iterator

from bot.catalogue.lint.base import LinterBase, number_text, value_problem
from bot.catalogue.models import (
    BroadcastDoc,
    Condition,
    EventDoc,
    FieldsDoc,
    LinksDoc,
    SayAction,
    SegmentCondition,
    SegmentDoc,
    SendAction,
    StartFlowAction,
    leaves,
)
from bot.catalogue.source import Locator, PathItem


class DocumentLint(LinterBase):
    def links(self, loc: Locator, doc: LinksDoc) -> None:
        for name, link in doc.links.items():
            path: list[PathItem] = ["links", name, "on_click"]
            self.actions(loc, path, link.on_click)
            for index, action in enumerate(link.on_click):
                if not loc.intact([*path, index]):
                    continue
                if isinstance(action, SayAction | SendAction):
                    what = f"on_click sends a message ({action.KIND})"
                elif isinstance(action, StartFlowAction):
                    what = f"on_click starts flow '{action.start_flow}', which asks a question"
                else:
                    continue
                self.warn(
                    loc,
                    [*path, index, action.KIND],
                    f"link '{name}': {what}, so a click can cost a push message (a click has"
                    " no reply token); on_click runs at most once per friend and link within"
                    " STEPLINE_LINK_ACTIONS_WINDOW (24h by default)",
                    key=True,
                )

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
