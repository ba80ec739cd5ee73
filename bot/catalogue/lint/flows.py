"""Lint of `flow:` documents: triggers, steps, their `next` targets and reachability, the
question as LINE receives it, and whether answers fit the fields they are saved in."""

from __future__ import annotations

import re
from typing import Any

from bot.catalogue import graph, messages
from bot.catalogue.explain import article, suggest
from bot.catalogue.lint.base import LinterBase, Path_, value_problem
from bot.catalogue.models import (
    END,
    INPUT_FITS,
    NAME_PATTERN,
    PICKER_FITS,
    FlowDoc,
    PickerSpec,
    Step,
)
from bot.catalogue.postbacks import choice_data
from bot.catalogue.source import Document, Locator, PathItem
from bot.line import limits


class FlowLint(LinterBase):
    def flow(self, doc: Document, loc: Locator, flow: FlowDoc) -> None:
        for index, trigger in enumerate(flow.start_on):
            self.trigger(doc, loc, ["start_on", index], trigger, flow.flow)
        names = _step_names(loc, flow)
        targets_ok = True
        for index, step in enumerate(flow.steps):
            targets_ok = self.step(loc, flow, ["steps", index], step, names) and targets_ok
        self.actions(loc, ["on_complete"], flow.on_complete)
        self.actions(loc, ["on_timeout"], flow.on_timeout)
        # With a missing target, "unreachable" would only be noise; so it would with a step or
        # a `next` left out of a document with problems.
        if targets_ok and loc.intact(["steps"]):
            reachable = graph.reachable(flow)
            for index, step in enumerate(flow.steps):
                if step.ask not in reachable:
                    self.report(
                        loc, ["steps", index, "ask"], f"step '{step.ask}' can never be reached"
                    )

    def target(
        self, loc: Locator, path: Path_, flow: FlowDoc, name: str, names: list[str] | None
    ) -> bool:
        if names is None or name == END or name in names:
            return True
        hint = suggest(name, [*names, END])
        self.report(loc, path, f"flow '{flow.flow}' has no step '{name}'{hint}")
        return False

    def step(
        self,
        loc: Locator,
        flow: FlowDoc,
        path: list[PathItem],
        step: Step,
        names: list[str] | None,
    ) -> bool:
        ok = True
        if step.when is not None:
            self.condition(loc, [*path, "when"], step.when)
        for index, message in enumerate(step.messages):
            self.message(loc, [*path, "messages", index], message)
        if len(step.messages) + 1 > limits.MAX_MESSAGES_PER_REQUEST:
            self.report(
                loc,
                [*path, "messages", limits.MAX_MESSAGES_PER_REQUEST - 1],
                f"step '{step.ask}' sends {len(step.messages) + 1} messages with its question;"
                f" LINE allows at most {limits.MAX_MESSAGES_PER_REQUEST} in one reply",
            )
        self.question(loc, flow, path, step)
        if step.invalid is not None:
            self.reply_text(loc, [*path, "invalid"], step.invalid)
        self.actions(loc, [*path, "on_invalid"], step.on_invalid)
        self.actions(loc, [*path, "do"], step.do)
        for index, choice in enumerate(step.choices or []):
            self.actions(loc, [*path, "choices", index, "do"], choice.do)
            if choice.next is not None:
                ok = (
                    self.target(loc, [*path, "choices", index, "next"], flow, choice.next, names)
                    and ok
                )
        if isinstance(step.next, str):
            ok = self.target(loc, [*path, "next"], flow, step.next, names) and ok
        elif step.next is not None:
            always: int | None = None
            for index, rule in enumerate(step.next):
                sub = [*path, "next", index]
                if always is not None and loc.intact([*path, "next"]):
                    self.report(
                        loc,
                        sub,
                        f"this rule is never used: rule {always + 1} of step '{step.ask}' has no"
                        " 'if' and always matches first",
                    )
                if rule.if_ is not None:
                    self.condition(loc, [*sub, "if"], rule.if_)
                elif always is None:
                    always = index
                ok = self.target(loc, [*sub, "goto"], flow, rule.goto, names) and ok
        if step.save is not None and loc.intact(path):  # `input`, `choices` as written
            self.save(loc, path, step)
        return ok

    def question(self, loc: Locator, flow: FlowDoc, path: list[PathItem], step: Step) -> None:
        """The question as the engine sends it: the text, with the choices as quick replies."""
        self.text(loc, [*path, "text"], step.text)
        ok = limits.utf16_len(step.text) <= limits.MAX_TEXT_UTF16
        choices = step.choices or []
        if len(choices) > limits.MAX_QUICK_REPLIES:
            self.report(
                loc,
                [*path, "choices", limits.MAX_QUICK_REPLIES],
                f"step '{step.ask}' has {len(choices)} choices; LINE allows at most"
                f" {limits.MAX_QUICK_REPLIES} quick replies",
            )
            ok = False
        labels: dict[str, int] = {}
        quick: list[dict[str, Any]] = []
        for index, choice in enumerate(choices):
            sub = [*path, "choices", index]
            ok = self.label(loc, [*sub, "label"], choice.label) and ok
            if choice.label in labels:
                self.report(
                    loc,
                    [*sub, "label"],
                    f"choice '{choice.label}' is in step '{step.ask}' twice"
                    f" (also choice {loc.number([*path, 'choices', labels[choice.label]])})",
                )
            labels.setdefault(choice.label, index)
            if choice.data is not None:
                data = choice.data
                ok = self.data(loc, [*sub, "data"], data) and ok
            else:
                data = choice_data(flow.flow, step.ask, index)
                ok = self.data(loc, sub, data, generated=True) and ok
            if choice.datetime is not None:
                quick.append(messages.picker_action(choice.label, data, choice.datetime))
            else:
                quick.append(
                    {
                        "type": "postback",
                        "label": choice.label,
                        "data": data,
                        "displayText": choice.label,
                    }
                )
        if ok and loc.intact([*path, "choices"]):
            self.schema(
                loc, [*path, "text"], messages.text_message(step.text, quick or None), "question"
            )

    def save(self, loc: Locator, path: list[PathItem], step: Step) -> None:
        assert step.save is not None
        definition = self.field(loc, [*path, "save"], step.save)
        if definition is None:
            return
        name = step.save
        if step.choices is None:
            kind = step.input or "text"
            if definition.type not in INPUT_FITS[kind]:
                self.report(
                    loc,
                    [*path, "save"],
                    f"field '{name}' is {article(definition.type)} field; it cannot hold the"
                    f" {kind} answer of step '{step.ask}'",
                )
            return
        for index, choice in enumerate(step.choices):
            sub = [*path, "choices", index]
            if choice.datetime is not None:
                mode = (
                    choice.datetime.mode
                    if isinstance(choice.datetime, PickerSpec)
                    else choice.datetime
                )
                if definition.type not in PICKER_FITS[mode]:
                    self.report(
                        loc,
                        [*sub, "datetime"],
                        f"field '{name}' is {article(definition.type)} field; it cannot hold the"
                        f" {mode} picked in choice '{choice.label}'",
                    )
                continue
            problem = value_problem(definition, choice.answer_value)
            if problem is not None:
                spot = [*sub, "value"] if choice.value is not None else [*sub, "label"]
                self.report(loc, spot, f"field '{name}': {problem}")


def _step_names(loc: Locator, flow: FlowDoc) -> list[str] | None:
    """The names of the flow's steps, with those of steps left out of a document with problems
    (`ask` as written); None when one of those has no name to go by."""
    names = [s.ask for s in flow.steps]
    if loc.intact(["steps"]):
        return names
    written = loc.node(["steps"])
    for step in written if isinstance(written, list) else []:
        ask = step.get("ask") if isinstance(step, dict) else None
        if not isinstance(ask, str) or not re.match(NAME_PATTERN, ask):
            return None
        names.append(ask)
    return names
