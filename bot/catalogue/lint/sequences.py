"""Lint of `sequence:` documents: anchors, start and stop triggers, quiet hours, and each
step's messages and time order."""

from __future__ import annotations

from bot.catalogue.durations import format_duration
from bot.catalogue.explain import article
from bot.catalogue.lint.base import LinterBase
from bot.catalogue.models import (
    BlockedTrigger,
    FollowTrigger,
    KeywordTrigger,
    PostbackTrigger,
    SequenceDoc,
    SequenceStep,
    TextMessageDef,
    Trigger,
)
from bot.catalogue.source import Document, Locator, PathItem
from bot.line import limits


class SequenceLint(LinterBase):
    def sequence_doc(self, doc: Document, loc: Locator, sequence: SequenceDoc) -> None:
        if sequence.anchor is not None:
            definition = self.field(loc, ["anchor"], sequence.anchor)
            if definition is not None and definition.type != "datetime":
                self.report(
                    loc,
                    ["anchor"],
                    f"the anchor '{sequence.anchor}' is {article(definition.type)} field;"
                    " a reminder's anchor must be a datetime field",
                )
        # A reminder without `start_on` gets `{field_set: <anchor>}` from the model: the anchor
        # is checked above, so an implied trigger (not in the YAML) is not linted again.
        if loc.node(["start_on"]) is not None:
            for index, trigger in enumerate(sequence.start_on):
                self.sequence_trigger(doc, loc, ["start_on", index], trigger, sequence, True)
        for index, trigger in enumerate(sequence.stop_on):
            self.sequence_trigger(doc, loc, ["stop_on", index], trigger, sequence, False)
        if sequence.quiet_hours is not None:
            start, end = sequence.quiet_hours
            if start == end:
                self.report(
                    loc,
                    ["quiet_hours"],
                    f"quiet hours from {start} to {end} are empty: the start and the end must"
                    " differ",
                )
        previous: SequenceStep | None = None
        for index, step in enumerate(sequence.steps):
            path: list[PathItem] = ["steps", index]
            self.sequence_step(loc, sequence, path, step)
            if previous is not None and loc.intact(["steps"]):
                self.step_order(loc, path, index, previous, step)
            previous = step

    def sequence_trigger(
        self,
        doc: Document,
        loc: Locator,
        path: list[PathItem],
        trigger: Trigger,
        sequence: SequenceDoc,
        start: bool,
    ) -> None:
        kind = trigger.KIND
        verb, where = ("start", "start_on") if start else ("stop", "stop_on")
        action = "start_sequence" if start else "stop_sequence"
        if isinstance(trigger, KeywordTrigger | PostbackTrigger):
            self.report(
                loc,
                [*path, kind],
                f"'{kind}' in {where}: sequences {verb} on changes, not on messages"
                f" ({verb} it with `{action}: {sequence.sequence}` in a keyword's or flow's do)",
                key=True,
            )
            return
        if start and isinstance(trigger, BlockedTrigger):
            self.report(
                loc,
                [*path, kind],
                "'blocked' in start_on: a friend who blocked the account gets no messages"
                " (put it in stop_on)",
                key=True,
            )
            return
        if not start and isinstance(trigger, FollowTrigger):
            self.report(
                loc,
                [*path, kind],
                "'follow' in stop_on: a sequence cannot stop on a follow (put it in start_on)",
                key=True,
            )
            return
        self.trigger(doc, loc, path, trigger, sequence.sequence)

    def sequence_step(
        self, loc: Locator, sequence: SequenceDoc, path: list[PathItem], step: SequenceStep
    ) -> None:
        number = loc.number(path)
        # Without its `anchor` (left out of a document with problems), a reminder is not one.
        anchor_ok = loc.complete
        if anchor_ok and sequence.anchor is None and step.before is not None:
            self.report(
                loc,
                [*path, "before"],
                "reminders without an anchor: 'before' counts back from the datetime field"
                " named by the sequence's 'anchor' (add 'anchor: <field>', or use 'after')",
                key=True,
            )
        if anchor_ok and sequence.anchor is not None and step.after is not None:
            self.report(
                loc,
                [*path, "after"],
                f"a reminder's steps use 'before' (time before the anchor"
                f" '{sequence.anchor}'), not 'after'",
                key=True,
            )
        if step.when is not None:
            self.condition(loc, [*path, "when"], step.when)
        if step.text is not None:
            text = TextMessageDef(text=step.text, quick_replies=step.quick_replies)
            self.message(loc, path, text, keys=("text", "quick_replies"))
        for index, message in enumerate(step.messages):
            self.message(loc, [*path, "messages", index], message)
        extra = 1 if step.text is not None else 0
        count = extra + len(step.messages)
        if count > limits.MAX_MESSAGES_PER_REQUEST:
            self.report(
                loc,
                [*path, "messages", limits.MAX_MESSAGES_PER_REQUEST - extra],
                f"step {number} sends {count} messages; LINE allows at most"
                f" {limits.MAX_MESSAGES_PER_REQUEST} in one push",
            )
        self.actions(loc, [*path, "do"], step.do)

    def step_order(
        self,
        loc: Locator,
        path: list[PathItem],
        index: int,
        previous: SequenceStep,
        step: SequenceStep,
    ) -> None:
        """`after` must not decrease from one step to the next, `before` must not increase
        (equal is allowed; with equal offsets, a later step's `at` must not be earlier)."""
        if step.after is not None and previous.after is not None:
            key, earlier = "after", step.after < previous.after
            same = step.after == previous.after
        elif step.before is not None and previous.before is not None:
            key, earlier = "before", step.before > previous.before
            same = step.before == previous.before
        else:
            return  # mixed after/before: reported as a reminder problem
        if not earlier and same and step.at is not None and previous.at is not None:
            earlier, key = step.at < previous.at, "at"
        if earlier:
            self.report(
                loc,
                [*path, key],
                f"steps out of time order: step {index + 1} ({_timing(step)}) comes before"
                f" step {index} ({_timing(previous)}); list the steps in the order they are sent",
            )


def _timing(step: SequenceStep) -> str:
    offset = step.after if step.after is not None else step.before
    word = "after" if step.after is not None else "before"
    text = f"{word} {format_duration(offset)}" if offset is not None else word
    return f"{text} at {step.at}" if step.at is not None else text
