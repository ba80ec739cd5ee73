"""The loaded catalogue: every document of `STEPLINE_FLOWS`, validated and linted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bot.catalogue.models import (
    BroadcastDoc,
    EventDoc,
    FieldDef,
    FlowDoc,
    KeywordRule,
    LinkDef,
    RichMenuDoc,
    SegmentDoc,
    SequenceDoc,
)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file, printed as `file:line:col: message` (1-based); a warning
    (`file:line:col: warning: message`) does not stop the catalogue from loading."""

    file: str
    line: int
    col: int
    message: str
    warning: bool = False

    @property
    def text(self) -> str:
        return f"warning: {self.message}" if self.warning else self.message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.text}"


class CatalogueError(Exception):
    """The catalogue cannot be loaded; `problems` says every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class FlowSource:
    """A flow document's own YAML text and the hash that names this version of it."""

    text: str
    file: str
    line: int

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Catalogue:
    fields: dict[str, FieldDef] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    flows: dict[str, FlowDoc] = field(default_factory=dict)
    flow_sources: dict[str, FlowSource] = field(default_factory=dict)
    keywords: list[KeywordRule] = field(default_factory=list)
    links: dict[str, LinkDef] = field(default_factory=dict)
    events: dict[str, EventDoc] = field(default_factory=dict)
    sequences: dict[str, SequenceDoc] = field(default_factory=dict)
    segments: dict[str, SegmentDoc] = field(default_factory=dict)
    broadcasts: dict[str, BroadcastDoc] = field(default_factory=dict)
    rich_menus: dict[str, RichMenuDoc] = field(default_factory=dict)  # in catalogue order
    folder: Path | None = None
    # The hash of the folder's files it was loaded from (`loader.FolderHash`); "" when built
    # in code. Names the catalogue's version across processes (`catalogue_versions`).
    content_hash: str = ""

    def flow_hash(self, name: str) -> str:
        return self.flow_sources[name].content_hash

    def value_labels(self, field_name: str) -> dict[str, str]:
        """How the owner's questions name a field's stored values: the label of the choice
        that saves or `set`s each value (`gender: female` → 女性), for showing a friend's
        fields as the owner wrote them. Values no choice names are shown as they are."""
        return self._value_labels.get(field_name, {})

    @cached_property
    def _value_labels(self) -> dict[str, dict[str, str]]:
        # Read once per catalogue (it is frozen): the simulator's panel asks every second.
        labels: dict[str, dict[str, str]] = {}
        for flow in self.flows.values():
            for step in flow.steps:
                for choice in step.choices or []:
                    if step.save is not None:
                        labels.setdefault(step.save, {}).setdefault(
                            str(choice.answer_value), choice.label
                        )
                    for action in choice.do:
                        values = getattr(action, "set", None)
                        if isinstance(values, dict):
                            for name, value in values.items():
                                labels.setdefault(name, {}).setdefault(str(value), choice.label)
        return labels
