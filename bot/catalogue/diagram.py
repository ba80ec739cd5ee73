"""A flow as a Mermaid `stateDiagram-v2`, drawn from the same edges the engine runs on.

Which transitions exist comes from `graph.flow_edges` alone (the graph the engine's machines
are built from); their labels gather every choice and condition that takes that path, from
`graph.direct_targets`.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from bot.catalogue.graph import START, direct_targets, flow_edges
from bot.catalogue.models import END, FlowDoc, Step

MAX_TEXT = 40  # characters of a question shown in its node

# Characters Mermaid would read as syntax, written as its `#code;` entities instead.
_ENTITIES = {
    "#": "#35;",
    '"': "#quot;",
    ";": "#59;",
    "<": "#lt;",
    ">": "#gt;",
    "{": "#123;",
    "}": "#125;",
    "[": "#91;",
    "]": "#93;",
    "|": "#124;",
    "`": "#96;",
    "\\": "#92;",
}


def escape(text: str, limit: int | None = None) -> str:
    """Text that is safe inside a Mermaid state description or transition label."""
    flat = re.sub(r"\s+", " ", text).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return "".join(_ENTITIES.get(char, char) for char in flat)


_OPERATORS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def describe(condition: Any) -> str:
    """A condition (as YAML writes it) in a few words: `age ≥ 40`, `tag 女性`."""
    if not isinstance(condition, dict):
        return str(condition)
    if "all" in condition:
        return " and ".join(_group(c) for c in condition["all"])
    if "any" in condition:
        return " or ".join(_group(c) for c in condition["any"])
    if "not" in condition:
        return f"not {_group(condition['not'])}"
    if "tag" in condition:
        return f"tag {condition['tag']}"
    if "field" in condition:
        name = condition["field"]
        for key, symbol in _OPERATORS.items():
            if key in condition:
                return f"{name} {symbol} {_value(condition[key])}"
        if "in" in condition:
            return f"{name} in {', '.join(_value(v) for v in condition['in'])}"
        if "between" in condition:
            low, high = condition["between"]
            return f"{name} {_value(low)}–{_value(high)}"
        if "exists" in condition:
            return f"{name} is {'set' if condition['exists'] else 'not set'}"
    if "followed_within" in condition:
        return f"followed within {condition['followed_within']}"
    if "clicked" in condition:
        within = f" within {condition['within']}" if condition.get("within") else ""
        return f"clicked {condition['clicked']}{within}"
    if "answered" in condition:
        spec = condition["answered"]
        value = f" = {_value(spec['value'])}" if spec.get("value") is not None else ""
        return f"answered {spec.get('flow')}.{spec.get('step')}{value}"
    key, value = next(iter(condition.items()))
    return f"{key.replace('_', ' ')} {value}"


def _group(condition: Any) -> str:
    text = describe(condition)
    return f"({text})" if " and " in text or " or " in text else text


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pretty(label: str) -> str:
    """An edge label of `graph` with its JSON condition written in words."""
    parts = []
    for part in label.split(" / "):
        if part.startswith("if {"):
            with contextlib.suppress(ValueError):
                part = "if " + describe(json.loads(part[3:]))
        parts.append(part)
    return " / ".join(parts)


def _labels(flow: FlowDoc, step: Step, dest: str) -> list[str]:
    """Every label of the moves from `step` to `dest` (a choice's own first)."""
    found = [label for target, label, _ in direct_targets(flow, step) if target == dest and label]
    if step.choices:
        names = [c.label for c in step.choices]
        by_choice = [
            label
            for label in found
            if any(label == n or label.startswith(n + " / ") for n in names)
        ]
        found = by_choice or found
    return list(dict.fromkeys(pretty(label) for label in found))


def mermaid(flow: FlowDoc) -> str:
    """The flow as Mermaid text: one state per step (labelled with its question), one
    transition per legal move (labelled with the choices, conditions or `skip X`)."""
    ids = {step.ask: f"s{index}" for index, step in enumerate(flow.steps)}
    by_name = {step.ask: step for step in flow.steps}
    lines = ["stateDiagram-v2"]
    if flow.title:
        title = re.sub(r"\s+", " ", flow.title).strip()
        lines.append(f"    %% {flow.flow}: {title}")
    for step in flow.steps:
        question = escape(step.text, MAX_TEXT)
        lines.append(f'    state "{escape(step.ask)}: {question}" as {ids[step.ask]}')

    def node(name: str) -> str:
        return "[*]" if name in (START, END) else ids[name]

    for edge in flow_edges(flow):
        if edge.dest not in ids and edge.dest != END:
            continue  # an unknown target: `stepline check` reports it
        source = by_name.get(edge.source)
        if edge.kind != "skip" and source is not None:
            label = ", ".join(_labels(flow, source, edge.dest))
        else:
            label = pretty(edge.label)
        arrow = f"    {node(edge.source)} --> {node(edge.dest)}"
        lines.append(f"{arrow} : {escape(label)}" if label else arrow)
    return "\n".join(lines) + "\n"
