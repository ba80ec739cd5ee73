"""What every kind of document shares: `LinterBase` holds the problems found and checks
what any document may contain (names of tags, fields, flows, links, events, sequences and rich
menus; field values; templates and texts; LINE messages; actions; conditions; triggers), and
the helper `value_problem`. Imports no other module of this package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2.sandbox import SandboxedEnvironment

from bot.catalogue import messages
from bot.catalogue.catalogue import Catalogue, Problem
from bot.catalogue.explain import article, show_value, suggest
from bot.catalogue.models import (
    MAX_INTEGER,
    Action,
    AllCondition,
    AnsweredCondition,
    AnyCondition,
    ButtonAction,
    ButtonsMessageDef,
    CarouselMessageDef,
    ClearAction,
    ClickedCondition,
    Condition,
    ConfirmMessageDef,
    EventTrigger,
    FieldCondition,
    FieldDef,
    FieldSetTrigger,
    FlowCompletedTrigger,
    FlowDoc,
    IncrementAction,
    InSequenceCondition,
    KeywordTrigger,
    MessageDef,
    NotCondition,
    PostbackTrigger,
    RichMenuAction,
    SayAction,
    SegmentCondition,
    SendAction,
    SequenceDoc,
    SetAction,
    StartFlowAction,
    StartSequenceAction,
    StopSequenceAction,
    TagAction,
    TagAddedTrigger,
    TagByAction,
    TagCondition,
    TextMessageDef,
    Trigger,
    UntagAction,
)
from bot.catalogue.source import Document, Locator, PathItem, place
from bot.catalogue.templates import check_template, contains_template, make_environment
from bot.catalogue.text import normalise
from bot.line import limits
from bot.line.message_schema import message_problems

Path_ = Sequence[PathItem]

NUMERIC_TYPES = ("integer", "number")
ORDERED_TYPES = ("integer", "number", "date", "datetime")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _template_environment() -> SandboxedEnvironment:
    """The environment messages render in (so its filters are known)."""
    return make_environment(ZoneInfo("UTC"))


def value_problem(definition: FieldDef, value: Any) -> str | None:
    """Why `value` cannot be stored in a field of this definition (None: it can)."""
    if value is None or contains_template(value):
        return None
    kind = definition.type
    got = show_value(value)
    if kind in ("text", "phone"):
        return None if isinstance(value, str) else f"expected text, got {got}"
    if kind == "email":
        if not isinstance(value, str) or not _EMAIL.match(value):
            return f"expected an email address, got {got}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {got}"
    if kind == "choice":
        choices = definition.choices or []
        if isinstance(value, str) and value in choices:
            return None
        return f"expected one of {', '.join(choices)}, got {got}{suggest(value, choices)}"
    if kind in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected {article(kind)}, got {got}"
        if kind == "integer" and isinstance(value, float) and not value.is_integer():
            return f"expected an integer, got {got}"
        if kind == "integer" and abs(value) > MAX_INTEGER:
            return f"{got} is out of range (an integer field holds at most ±{MAX_INTEGER:,})"
        low, high = definition.min, definition.max
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{got} is out of range ({_range_text(low, high)})"
        return None
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return None
        if isinstance(value, str):
            try:
                date.fromisoformat(value)
                return None
            except ValueError:
                pass
        return f"expected a date such as 2026-12-01, got {got}"
    if kind == "datetime":
        if isinstance(value, datetime):
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
                return None
            except ValueError:
                pass
        return f"expected a date and time such as 2026-12-01 10:00, got {got}"
    return None


def number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{number_text(low)} to {number_text(high)}"
    if low is not None:
        return f"at least {number_text(low)}"
    return f"at most {number_text(high)}"


class LinterBase:
    """`broken` names what documents with problems define, `unknowable` the kinds of names such
    a document hides (see `loader.Parsed`): their problems are reported already, so none of
    those names is also reported unknown."""

    def __init__(
        self,
        documents: list[Document],
        catalogue: Catalogue,
        broken: dict[str, set[str]] | None = None,
        unknowable: set[str] | None = None,
    ) -> None:
        self.documents = documents
        self.catalogue = catalogue
        self.problems: list[Problem] = []
        self.env = _template_environment()
        self.broken = broken or {}
        self.unknowable = unknowable or set()
        self.tags = set(catalogue.tags) | self.broken.get("tags", set())
        # keyword/postback → (document, path, flow) of the first flow it starts
        self.keyword_starts: dict[str, tuple[Document, list[PathItem], str]] = {}
        self.postback_starts: dict[str, tuple[Document, list[PathItem], str]] = {}

    def elsewhere(self, kind: str, name: str) -> bool:
        """Is `name` (of a document `kind`, or `alias`) defined by a document with problems?"""
        return kind in self.unknowable or name in self.broken.get(kind, set())

    # ------------------------------------------------------------------ reporting

    def report(self, loc: Locator, path: Path_, message: str, key: bool = False) -> None:
        self.problems.append(loc.problem(path, message, key=key))

    def warn(self, loc: Locator, path: Path_, message: str, key: bool = False) -> None:
        """A problem that does not stop the catalogue from loading (`check` shows it)."""
        self.problems.append(replace(loc.problem(path, message, key=key), warning=True))

    # ------------------------------------------------------------------ names

    def tag(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.tags and not self.elsewhere("tags", name):
            hint = suggest(name, sorted(self.tags))
            self.report(loc, path, f"unknown tag '{name}'{hint or ' (declare it in a tags list)'}")

    def field(self, loc: Locator, path: Path_, name: str, key: bool = False) -> FieldDef | None:
        definition = self.catalogue.fields.get(name)
        if definition is None and not self.elsewhere("fields", name):
            hint = suggest(name, sorted(self.catalogue.fields))
            self.report(loc, path, f"unknown field '{name}'{hint}", key=key)
        return definition

    def flow_named(self, loc: Locator, path: Path_, name: str) -> FlowDoc | None:
        flow = self.catalogue.flows.get(name)
        if flow is None and not self.elsewhere("flow", name):
            hint = suggest(name, sorted(self.catalogue.flows))
            self.report(loc, path, f"unknown flow '{name}'{hint}")
        return flow

    def link(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.catalogue.links and not self.elsewhere("links", name):
            hint = suggest(name, sorted(self.catalogue.links))
            self.report(loc, path, f"unknown link '{name}'{hint or ' (define it in a links list)'}")

    def event_named(self, loc: Locator, path: Path_, name: str) -> None:
        """Any event name may start a flow (an outside system may report events that have no
        `event:` document); but one that is a near miss of a defined event is a typo."""
        known = set(self.catalogue.events) | self.broken.get("event", set())
        if name in known or "event" in self.unknowable:
            return
        hint = suggest(name, sorted(known))
        if hint:
            self.report(loc, path, f"event '{name}' has no event document{hint}")

    def sequence_named(self, loc: Locator, path: Path_, name: str) -> SequenceDoc | None:
        sequence = self.catalogue.sequences.get(name)
        if sequence is None and not self.elsewhere("sequence", name):
            hint = suggest(name, sorted(self.catalogue.sequences))
            self.report(loc, path, f"unknown sequence '{name}'{hint}")
        return sequence

    def rich_menu_named(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.catalogue.rich_menus and not self.elsewhere("rich_menu", name):
            hint = suggest(name, sorted(self.catalogue.rich_menus))
            self.report(loc, path, f"unknown rich menu '{name}'{hint}")

    def segment_named(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.catalogue.segments and not self.elsewhere("segment", name):
            hint = suggest(name, sorted(self.catalogue.segments))
            self.report(loc, path, f"unknown segment '{name}'{hint}")

    # ------------------------------------------------------------------ values

    def value(self, loc: Locator, path: Path_, name: str, definition: FieldDef, value: Any) -> None:
        problem = value_problem(definition, value)
        if problem is not None:
            self.report(loc, path, f"field '{name}': {problem}")
        if contains_template(value):
            self.template(loc, path, value)

    # ------------------------------------------------------------------ templates and texts

    def template(self, loc: Locator, path: Path_, text: str) -> None:
        """Compile a template; check the links it names."""
        checked = check_template(self.env, text)
        if checked.problem is not None:
            self.report(loc, path, checked.problem)
        for name in checked.links:
            self.link(loc, path, name)

    def text(self, loc: Locator, path: Path_, text: str) -> None:
        self.template(loc, path, text)
        size = limits.utf16_len(text)
        if size > limits.MAX_TEXT_UTF16:
            self.report(loc, path, _too_long(size))

    def label(self, loc: Locator, path: Path_, label: str) -> bool:
        self.template(loc, path, label)
        if len(label) > limits.MAX_LABEL:
            self.report(
                loc,
                path,
                f"label '{label}' is {len(label)} characters long;"
                f" LINE allows at most {limits.MAX_LABEL}",
            )
            return False
        return True

    def data(self, loc: Locator, path: Path_, data: str, generated: bool = False) -> bool:
        if len(data) > limits.MAX_POSTBACK_DATA:
            what = (
                "the postback data the engine makes for this choice"
                if generated
                else "postback data"
            )
            self.report(
                loc,
                path,
                f"{what} is {len(data)} characters long; LINE allows at most"
                f" {limits.MAX_POSTBACK_DATA}",
            )
            return False
        return True

    def schema(self, loc: Locator, path: Path_, api_json: dict[str, Any], what: str) -> None:
        """LINE's schema of a message object (`bot.line.message_schema`)."""
        problems = message_problems(api_json)
        if problems:
            self.report(loc, path, f"invalid {what}: {'; '.join(problems)}")

    # ------------------------------------------------------------------ messages

    def message(
        self,
        loc: Locator,
        path: Path_,
        message: MessageDef,
        keys: tuple[str, ...] | None = None,
    ) -> None:
        """A message object: its templates, LINE's limits, then LINE's schema of a message object.

        `keys`: the message is only those keys of the YAML mapping at `path` (a sequence
        step's `text` and `quick_replies`)."""
        if not loc.intact(path):
            return  # a message with a problem of its own is built once that is fixed
        path = list(path)
        ok = True
        node = loc.node(path)
        if keys is not None and isinstance(node, dict):
            node = {key: value for key, value in node.items() if key in keys}
        for sub, text in self._strings(node, path):
            self.template(loc, sub, text)
        if isinstance(message, TextMessageDef):
            size = limits.utf16_len(message.text)
            if size > limits.MAX_TEXT_UTF16:
                self.report(loc, [*path, "text"], _too_long(size))
                ok = False
        replies = getattr(message, "quick_replies", None) or []
        if len(replies) > limits.MAX_QUICK_REPLIES:
            self.report(
                loc,
                [*path, "quick_replies", limits.MAX_QUICK_REPLIES],
                f"{len(replies)} quick replies; LINE allows at most {limits.MAX_QUICK_REPLIES}",
            )
            ok = False
        for sub, action in self._button_actions(path, message):
            ok = self.label(loc, [*sub, "label"], action.label) and ok
            if action.data is not None:
                ok = self.data(loc, [*sub, "data"], action.data) and ok
        if not ok:
            return  # LINE's schema would only repeat what is said above
        try:
            api_json = messages.build(message)
        except messages.InvalidMessage as exc:
            problems = "; ".join(exc.problems)
            self.report(loc, path, f"invalid {_message_kind(message)} message: {problems}")
            return
        for problem in messages.limit_problems(api_json):
            self.report(loc, path, problem)

    def _strings(self, node: Any, path: list[PathItem]) -> Iterator[tuple[list[PathItem], str]]:
        """Every text in a message's YAML, except raw flex JSON (which is not a template)."""
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "contents" and path and path[-1] == "flex":
                    continue
                yield from self._strings(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from self._strings(value, [*path, index])
        elif isinstance(node, str):
            yield path, node

    @staticmethod
    def _button_actions(
        path: list[PathItem], message: MessageDef
    ) -> Iterator[tuple[list[PathItem], ButtonAction]]:
        for index, action in enumerate(getattr(message, "quick_replies", None) or []):
            yield [*path, "quick_replies", index], action
        if isinstance(message, ButtonsMessageDef):
            for index, action in enumerate(message.buttons.actions):
                yield [*path, "buttons", "actions", index], action
        if isinstance(message, ConfirmMessageDef):
            for index, action in enumerate(message.confirm.actions):
                yield [*path, "confirm", "actions", index], action
        if isinstance(message, CarouselMessageDef):
            for column_index, column in enumerate(message.carousel.columns):
                for index, action in enumerate(column.actions):
                    yield [*path, "carousel", "columns", column_index, "actions", index], action

    def reply_text(self, loc: Locator, path: Path_, text: str) -> None:
        """A bare text that is sent as a text message (`say`, a keyword's `reply`)."""
        self.text(loc, path, text)
        if limits.utf16_len(text) <= limits.MAX_TEXT_UTF16:
            self.schema(loc, path, messages.text_message(text), "text message")

    # ------------------------------------------------------------------ actions

    def actions(self, loc: Locator, path: Path_, actions: list[Action]) -> None:
        for index, action in enumerate(actions):
            self.action(loc, [*path, index], action)

    def action(self, loc: Locator, path: list[PathItem], action: Action) -> None:
        if not loc.intact(path):
            return  # an action with a problem of its own
        if isinstance(action, TagAction | UntagAction):
            key = action.KIND
            raw = action.tag if isinstance(action, TagAction) else action.untag
            if isinstance(raw, str):
                self.tag(loc, [*path, key], raw)
            else:
                for index, name in enumerate(raw):
                    self.tag(loc, [*path, key, index], name)
        elif isinstance(action, TagByAction):
            spec = action.tag_by
            definition = self.field(loc, [*path, "tag_by", "field"], spec.field)
            if definition is not None and definition.type not in NUMERIC_TYPES:
                self.report(
                    loc,
                    [*path, "tag_by", "field"],
                    f"'tag_by' needs a number field; '{spec.field}' is {article(definition.type)} field",
                )
            for name, (low, high) in spec.ranges.items():
                self.tag(loc, [*path, "tag_by", "ranges", name], name)
                if low > high:
                    self.report(
                        loc,
                        [*path, "tag_by", "ranges", name],
                        f"the range of '{name}' goes from {number_text(low)} down to {number_text(high)};"
                        " write the smaller number first",
                    )
        elif isinstance(action, SetAction):
            for name, value in action.set.items():
                definition = self.field(loc, [*path, "set", name], name, key=True)
                if definition is not None:
                    self.value(loc, [*path, "set", name], name, definition, value)
        elif isinstance(action, IncrementAction):
            for name, amount in action.increment.items():
                sub = [*path, "increment", name]
                definition = self.field(loc, sub, name, key=True)
                if definition is not None and definition.type not in NUMERIC_TYPES:
                    self.report(
                        loc,
                        sub,
                        f"only number fields can be incremented; '{name}' is"
                        f" {article(definition.type)} field",
                        key=True,
                    )
                if isinstance(amount, str):
                    if contains_template(amount):
                        self.template(loc, sub, amount)
                    else:
                        self.report(
                            loc,
                            sub,
                            f"increment of '{name}': expected a number, got {show_value(amount)}",
                        )
                elif (
                    definition is not None
                    and definition.type == "integer"
                    and not float(amount).is_integer()
                ):
                    self.report(
                        loc, sub, f"field '{name}': expected an integer, got {show_value(amount)}"
                    )
        elif isinstance(action, ClearAction):
            if isinstance(action.clear, str):
                self.field(loc, [*path, "clear"], action.clear)
            else:
                for index, name in enumerate(action.clear):
                    self.field(loc, [*path, "clear", index], name)
        elif isinstance(action, SayAction):
            self.reply_text(loc, [*path, "say"], action.say)
        elif isinstance(action, SendAction):
            single = isinstance(loc.node([*path, "send"]), dict)
            for index, message in enumerate(action.send):
                sub = [*path, "send"] if single else [*path, "send", index]
                self.message(loc, sub, message)
        elif isinstance(action, StartFlowAction):
            self.flow_named(loc, [*path, "start_flow"], action.start_flow)
        elif isinstance(action, StartSequenceAction):
            self.sequence_named(loc, [*path, "start_sequence"], action.start_sequence)
        elif isinstance(action, StopSequenceAction):
            self.sequence_named(loc, [*path, "stop_sequence"], action.stop_sequence)
        elif isinstance(action, RichMenuAction):
            self.rich_menu_named(loc, [*path, "rich_menu"], action.rich_menu)

    # ------------------------------------------------------------------ conditions

    def condition(self, loc: Locator, path: list[PathItem], condition: Condition) -> None:
        compound = isinstance(condition, AllCondition | AnyCondition | NotCondition)
        if not compound and not loc.intact(path):
            return  # a condition with a problem of its own
        if isinstance(condition, TagCondition):
            self.tag(loc, [*path, "tag"], condition.tag)
        elif isinstance(condition, FieldCondition):
            self.field_condition(loc, path, condition)
        elif isinstance(condition, ClickedCondition):
            self.link(loc, [*path, "clicked"], condition.clicked)
        elif isinstance(condition, AnsweredCondition):
            self.answered(loc, [*path, "answered"], condition)
        elif isinstance(condition, InSequenceCondition):
            self.sequence_named(loc, [*path, "in_sequence"], condition.in_sequence)
        elif isinstance(condition, AllCondition):
            for index, sub in enumerate(condition.all):
                self.condition(loc, [*path, "all", index], sub)
        elif isinstance(condition, AnyCondition):
            for index, sub in enumerate(condition.any):
                self.condition(loc, [*path, "any", index], sub)
        elif isinstance(condition, NotCondition):
            self.condition(loc, [*path, "not"], condition.not_)
        elif isinstance(condition, SegmentCondition):
            self.segment_named(loc, [*path, "segment"], condition.segment)

    def field_condition(
        self, loc: Locator, path: list[PathItem], condition: FieldCondition
    ) -> None:
        name = condition.field
        definition = self.field(loc, [*path, "field"], name)
        if definition is None:
            return
        operator = condition.operator
        operand = condition.operand
        if operator in ("eq", "ne") and operand is not None:
            self.value(loc, [*path, operator], name, definition, operand)
        elif operator == "in" and operand is not None:
            for index, item in enumerate(operand):
                self.value(loc, [*path, "in", index], name, definition, item)
        elif operator in ("gt", "gte", "lt", "lte", "between") and (
            definition.type not in ORDERED_TYPES
        ):
            self.report(
                loc,
                [*path, operator],
                f"'{operator}' compares numbers or dates; field '{name}' is"
                f" {article(definition.type)} field",
                key=True,
            )

    def answered(self, loc: Locator, path: list[PathItem], condition: AnsweredCondition) -> None:
        spec = condition.answered
        flow = self.flow_named(loc, [*path, "flow"], spec.flow)
        if flow is None:
            return
        names = [s.ask for s in flow.steps]
        if spec.step not in names:
            self.report(
                loc,
                [*path, "step"],
                f"flow '{spec.flow}' has no step '{spec.step}'{suggest(spec.step, names)}",
            )
            return
        step = flow.step(spec.step)
        if spec.value is not None and step.choices and not any(c.datetime for c in step.choices):
            values = [c.answer_value for c in step.choices]
            if spec.value not in values:
                shown = [str(v) for v in values]
                self.report(
                    loc,
                    [*path, "value"],
                    f"step '{spec.step}' of flow '{spec.flow}' has no answer"
                    f" {show_value(spec.value)} (its answers: {', '.join(shown)})"
                    f"{suggest(spec.value, shown)}",
                )

    # ------------------------------------------------------------------ triggers

    def trigger(
        self, doc: Document, loc: Locator, path: list[PathItem], trigger: Trigger, flow: str
    ) -> None:
        if not loc.intact(path):
            return  # a trigger with a problem of its own
        if isinstance(trigger, TagAddedTrigger):
            self.tag(loc, [*path, "tag_added"], trigger.tag_added)
        elif isinstance(trigger, FieldSetTrigger):
            self.field(loc, [*path, "field_set"], trigger.field_set)
        elif isinstance(trigger, FlowCompletedTrigger):
            self.flow_named(loc, [*path, "flow_completed"], trigger.flow_completed)
        elif isinstance(trigger, EventTrigger):
            self.event_named(loc, [*path, "event"], trigger.event)
        elif isinstance(trigger, KeywordTrigger):
            self.once(
                self.keyword_starts,
                normalise(trigger.keyword),
                doc,
                [*path, "keyword"],
                flow,
                "keyword",
                trigger.keyword,
            )
        elif isinstance(trigger, PostbackTrigger):
            self.once(
                self.postback_starts,
                trigger.postback,
                doc,
                [*path, "postback"],
                flow,
                "postback",
                trigger.postback,
            )

    def once(
        self,
        seen: dict[str, tuple[Document, list[PathItem], str]],
        key: str,
        doc: Document,
        path: list[PathItem],
        flow: str,
        what: str,
        shown: str,
    ) -> None:
        if key not in seen:
            seen[key] = (doc, path, flow)
            return
        first_doc, first_path, first_flow = seen[key]
        if first_flow == flow:
            message = f"{what} '{shown}' starts this flow twice"
        else:
            message = (
                f"{what} '{shown}' also starts flow '{first_flow}'"
                f" ({place(first_doc, first_path, doc.file)}); only one flow can start on it"
            )
        self.report(doc.locator, path, message)


def _too_long(size: int) -> str:
    return f"text is {size} UTF-16 units long; LINE allows at most {limits.MAX_TEXT_UTF16}"


def _message_kind(message: MessageDef) -> str:
    return getattr(message, "KIND", "LINE")
