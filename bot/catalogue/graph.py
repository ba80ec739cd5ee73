"""A flow's steps as a graph: the one place that says which moves are legal.

The `transitions` machine, the Mermaid diagram and the reachability lint are all built from
`flow_edges`, so they cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from bot.catalogue.models import END, FlowDoc, NextRule, Step

START = "start"
EdgeKind = Literal["start", "choice", "rule", "default", "skip"]


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str
    label: str
    kind: EdgeKind


def default_next(flow: FlowDoc, step: Step) -> str:
    """The step after `step` in the list, or END."""
    names = [s.ask for s in flow.steps]
    index = names.index(step.ask)
    return names[index + 1] if index + 1 < len(names) else END


def describe_condition(rule: NextRule) -> str:
    if rule.if_ is None:
        return "else"
    dumped = rule.if_.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return "if " + json.dumps(dumped, ensure_ascii=False, separators=(", ", ": "))


def step_level_targets(flow: FlowDoc, step: Step) -> list[tuple[str, str, EdgeKind]]:
    """Where the step leads when no choice overrides it: its `next`, else the following step."""
    nxt = step.next
    if nxt is None:
        return [(default_next(flow, step), "", "default")]
    if isinstance(nxt, str):
        return [(nxt, "", "default")]
    targets: list[tuple[str, str, EdgeKind]] = [
        (rule.goto, describe_condition(rule), "rule") for rule in nxt
    ]
    if all(rule.if_ is not None for rule in nxt):
        # No rule matched: fall through to the following step.
        targets.append((default_next(flow, step), "otherwise", "default"))
    return targets


def direct_targets(flow: FlowDoc, step: Step) -> list[tuple[str, str, EdgeKind]]:
    """Every move an answer to `step` can make (before `when` skips are applied)."""
    targets: list[tuple[str, str, EdgeKind]] = []
    level = step_level_targets(flow, step)
    if step.choices:
        for choice in step.choices:
            if choice.next is not None:
                targets.append((choice.next, choice.label, "choice"))
            else:
                targets.extend(
                    (dest, _join(choice.label, label), kind) for dest, label, kind in level
                )
    else:
        targets.extend(level)
    # Retries exhausted (or `when` false) also moves on by the step-level targets.
    targets.extend(t for t in level if t not in targets)
    return targets


def _join(first: str, second: str) -> str:
    return f"{first} / {second}" if second else first


def flow_edges(flow: FlowDoc) -> list[Edge]:
    """All legal moves, with moves through skippable (`when`) steps expanded."""
    by_name = {s.ask: s for s in flow.steps}
    raw: dict[str, list[tuple[str, str, EdgeKind]]] = {
        START: [(flow.steps[0].ask, "", "start")],
    }
    for step in flow.steps:
        raw[step.ask] = direct_targets(flow, step)

    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()

    def add(source: str, dest: str, label: str, kind: EdgeKind) -> None:
        if (source, dest) not in seen:
            seen.add((source, dest))
            edges.append(Edge(source, dest, label, kind))

    for source, targets in raw.items():
        for dest, label, kind in targets:
            add(source, dest, label, kind)
            # A target with `when` may be skipped: the move then lands on what it leads to.
            pending = [dest]
            visited: set[str] = set()
            while pending:
                name = pending.pop()
                target = by_name.get(name)
                if target is None or target.when is None or name in visited:
                    continue
                visited.add(name)
                for skip_dest, _, _ in step_level_targets(flow, target):
                    add(source, skip_dest, f"skip {name}", "skip")
                    pending.append(skip_dest)
    return edges


def states(flow: FlowDoc) -> list[str]:
    return [START, *(s.ask for s in flow.steps), END]


def reachable(flow: FlowDoc) -> set[str]:
    """States reachable from START (unknown targets are ignored here; lint reports them)."""
    adjacency: dict[str, list[str]] = {}
    for edge in flow_edges(flow):
        adjacency.setdefault(edge.source, []).append(edge.dest)
    seen = {START}
    pending = [START]
    while pending:
        for dest in adjacency.get(pending.pop(), []):
            if dest not in seen:
                seen.add(dest)
                pending.append(dest)
    return seen


def trigger_name(dest: str) -> str:
    """The `transitions` trigger that moves to `dest`."""
    return f"to_{dest}"
