"""Checks across documents, each reported at the YAML node it is about.

The models check one document's shape; lint checks what needs the whole catalogue (every name
defined, values that fit their fields, steps that can be reached, valid LINE messages within
LINE's limits, templates that compile, keywords and postbacks that do not collide). `base`
holds `LinterBase`, what every kind of document shares, with `value_problem`;
`flows`, `sequences`, `keywords` and `documents` each add one mixin of it, `richmenus` holds
functions given the linter, and `Linter` here combines them all. Those modules import `base`
only, never each other nor this package; of stepline outside `bot.catalogue` they may import
only `bot.line` (limits, LINE's message schema) and, lazily, `bot.richmenus` (images, font).
"""

from __future__ import annotations

from bot.catalogue.catalogue import Catalogue, Problem
from bot.catalogue.lint.base import LinterBase, value_problem
from bot.catalogue.lint.documents import DocumentLint
from bot.catalogue.lint.flows import FlowLint
from bot.catalogue.lint.keywords import KeywordLint
from bot.catalogue.lint.richmenus import lint_rich_menus
from bot.catalogue.lint.sequences import SequenceLint
from bot.catalogue.models import (
    BroadcastDoc,
    EventDoc,
    FieldsDoc,
    FlowDoc,
    LinksDoc,
    SegmentDoc,
    SequenceDoc,
)
from bot.catalogue.source import Document


class Linter(FlowLint, SequenceLint, KeywordLint, DocumentLint):
    """Every check, run over the documents in order, then across rich menus and keywords."""

    def run(self) -> list[Problem]:
        for doc in self.documents:
            loc = doc.locator
            model = doc.model
            if isinstance(model, FlowDoc):
                self.flow(doc, loc, model)
            elif isinstance(model, FieldsDoc):
                self.fields(loc, model)
            elif isinstance(model, LinksDoc):
                self.links(loc, model)
            elif isinstance(model, EventDoc):
                self.event_doc(loc, model)
            elif isinstance(model, SequenceDoc):
                self.sequence_doc(doc, loc, model)
            elif isinstance(model, SegmentDoc):
                self.segment_doc(loc, model)
            elif isinstance(model, BroadcastDoc):
                self.broadcast_doc(loc, model)
        lint_rich_menus(self, self.documents)
        self.keywords()
        return self.problems


def lint(
    documents: list[Document],
    catalogue: Catalogue,
    broken: dict[str, set[str]] | None = None,
    unknowable: set[str] | None = None,
) -> list[Problem]:
    """Every cross-document problem of the merged catalogue, and of what could be kept of
    documents with problems (those with `pruned`, see `salvage`).

    `broken` names what documents with problems define, `unknowable` the kinds of names they
    hide (see `loader.Parsed`).
    """
    return Linter(documents, catalogue, broken, unknowable).run()


__all__ = ["Linter", "LinterBase", "lint", "value_problem"]
