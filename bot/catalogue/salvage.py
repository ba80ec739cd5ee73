"""What of a document that failed validation can still be linted.

One run of `stepline check` should show every problem, not one a run: a typo'd key must not
hide an unknown tag three steps further. So a document that fails its model is validated again
without the parts its errors are about, and lint checks what is left:

- an unknown key: that key;
- a value the model does not accept, or a mapping that breaks a rule of its own (a step with
  both `choices` and `input`): that value or mapping;
- a key missing from a mapping: that mapping;
- a step of a flow defined twice: its later copies.

Leaving something out may break what holds it (a required value gone leaves its mapping
incomplete, a list left empty is too short), so this is repeated, up to the document itself:
then nothing of it is linted. Only the first round's errors are reported (`explain`); those of
later rounds are about what was left out, or wait for it to be fixed, except a flow's step
defined twice (nothing left out can cause it).

What is left is not the document the user meant: a check of a node as a whole (an answer that
must fit the field it is saved in, a rule that hides the next ones, steps that can be reached)
asks `Locator.intact` first, and checks each part that is whole (a tag, a field, a flow named,
a template, a message) as usual. The document is linted only: it is never merged into the
catalogue, and what it defines counts as defined (`loader.Parsed`).
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.catalogue.catalogue import Problem
from bot.catalogue.explain import error_spots, explain_whole_document
from bot.catalogue.models import Model
from bot.catalogue.source import Locator, Path_, PathItem, Pruned

# Each round leaves out at least one more enclosing node; documents are not deeper than this.
MAX_ROUNDS = 12


def without(data: Any, paths: Set[Path_], here: Path_ = ()) -> Any:
    """A copy of plain `data` without the nodes at `paths`."""
    if not any(path[: len(here)] == here for path in paths):
        return data
    if isinstance(data, dict):
        return {
            key: without(value, paths, (*here, key))
            for key, value in data.items()
            if (*here, key) not in paths
        }
    if isinstance(data, list):
        return [
            without(value, paths, (*here, index))
            for index, value in enumerate(data)
            if (*here, index) not in paths
        ]
    return data


@dataclass
class Salvaged:
    """What `salvage` kept of a document (`model`, None if nothing), what it left out, and the
    problems found on the way that the first validation could not see."""

    model: Model | None
    pruned: Pruned
    problems: list[Problem] = field(default_factory=list)


def salvage(model: type[Model], data: Any, locator: Locator, error: ValidationError) -> Salvaged:
    """`model` validated from `data` without the parts `error` is about.

    `data` is the plain form of (part of) the YAML node `locator.root`, with the same paths.
    Of the errors of later rounds, only a flow's step defined twice is reported: a check of
    the whole flow that its steps' errors kept from running, which nothing left out can cause.
    """
    pruned = Pruned(locator.root, frozenset())
    kept = Salvaged(None, pruned)
    left = data
    spots = error_spots(error, model, left)
    for _ in range(MAX_ROUNDS):
        if pruned.paths:  # a later round
            for found, spot in spots:
                if not spot.path:
                    kept.problems.extend(explain_whole_document(found, locator))
        paths = set(pruned.paths)
        for found, spot in spots:
            cuts = [spot.path] if spot.path else _whole_document_cuts(found, left)
            if not cuts:
                return kept  # only the document itself would do
            paths.update(pruned.original(cut) for cut in cuts)
        if len(paths) == len(pruned.paths):
            return kept  # nothing more to leave out, and still not valid
        pruned = kept.pruned = Pruned(locator.root, frozenset(paths))
        left = without(data, pruned.paths)
        try:
            kept.model = model.model_validate(left)
            return kept
        except ValidationError as again:
            spots = error_spots(again, model, left)
    return kept


_DEFINED_TWICE = re.compile(r"step `(.+)` is defined twice")


def _whole_document_cuts(error: dict[str, Any], data: Any) -> list[list[PathItem]]:
    """What to leave out for an error about the document as a whole: a flow's step defined
    twice (its later copies); nothing will do for any other."""
    match = _DEFINED_TWICE.fullmatch(str(error.get("ctx", {}).get("error", "")))
    steps = data.get("steps") if isinstance(data, dict) else None
    if match is None or not isinstance(steps, list):
        return []
    asks = [step.get("ask") if isinstance(step, dict) else None for step in steps]
    return [["steps", i] for i, ask in enumerate(asks) if ask == match[1] and i > asks.index(ask)]
