"""Checks across documents, each reported at the YAML node it is about.

The models check one document's shape; lint checks what needs the whole catalogue: that
every tag, field, flow, step and link named is defined, that values fit their fields, that
every step can be reached, that messages are valid LINE messages within LINE's limits, that
templates compile, and that keywords and postbacks do not collide.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from bot import messages
from bot.catalogue.catalogue import Catalogue, Problem
from bot.catalogue.durations import format_duration
from bot.catalogue.explain import show_value, suggest
from bot.catalogue.lint_richmenus import lint_rich_menus
from bot.catalogue.models import (
    END,
    Action,
    AllCondition,
    AnsweredCondition,
    AnyCondition,
    BlockedTrigger,
    BroadcastDoc,
    ButtonAction,
    ButtonsMessageDef,
    CarouselMessageDef,
    ClearAction,
    ClickedCondition,
    Condition,
    ConfirmMessageDef,
    EventDoc,
    EventTrigger,
    FieldCondition,
    FieldDef,
    FieldsDoc,
    FieldSetTrigger,
    FlowCompletedTrigger,
    FlowDoc,
    FollowTrigger,
    IncrementAction,
    InSequenceCondition,
    KeywordRule,
    KeywordsDoc,
    KeywordTrigger,
    LinksDoc,
    MessageDef,
    NotCondition,
    PickerSpec,
    PostbackTrigger,
    RichMenuAction,
    SayAction,
    SegmentCondition,
    SegmentDoc,
    SendAction,
    SequenceDoc,
    SequenceStep,
    SetAction,
    StartFlowAction,
    StartSequenceAction,
    Step,
    StopSequenceAction,
    TagAction,
    TagAddedTrigger,
    TagByAction,
    TagCondition,
    TextMessageDef,
    Trigger,
    UntagAction,
    leaves,
)
from bot.catalogue.source import Document, Locator, PathItem, place
from bot.engine import graph

Path_ = Sequence[PathItem]

CHOICE_DATA_PREFIX = "sl1"  # the engine's generated choice postback: sl1|<flow>|<step>|<index>
NUMERIC_TYPES = ("integer", "number")
ORDERED_TYPES = ("integer", "number", "date", "datetime")
# Which field types can hold the answer of each `input` kind.
INPUT_FITS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "integer": ("integer", "number"),
    "number": ("number",),
    "email": ("email", "text"),
    "phone": ("phone", "text"),
    "date": ("date",),
    "datetime": ("datetime",),
}
PICKER_FITS: dict[str, tuple[str, ...]] = {
    "date": ("date",),
    "datetime": ("datetime",),
    "time": ("text",),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def choice_data(flow: str, step: str, index: int) -> str:
    return f"{CHOICE_DATA_PREFIX}|{flow}|{step}|{index}"


def normalise(text: str) -> str:
    """How the engine compares typed keywords (full-width folded, trimmed)."""
    return unicodedata.normalize("NFKC", text).strip()


def is_template(text: Any) -> bool:
    return isinstance(text, str) and ("{{" in text or "{%" in text or "{#" in text)


def article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _template_environment() -> SandboxedEnvironment:
    """The engine's environment (so its filters are known), or a bare sandbox."""
    try:
        from bot.engine.templates import make_environment

        return make_environment(ZoneInfo("UTC"))
    except Exception:  # the engine is optional for checking YAML
        return SandboxedEnvironment()


def value_problem(definition: FieldDef, value: Any) -> str | None:
    """Why `value` cannot be stored in a field of this definition (None: it can)."""
    if value is None or is_template(value):
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


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}"
    if low is not None:
        return f"at least {_number(low)}"
    return f"at most {_number(high)}"


def sdk_reason(exc: Exception) -> str:
    """The SDK's complaint about a message, in fewer words."""
    text = str(exc).removeprefix("not a valid LINE message: ").strip()
    pydantic_v1 = re.match(r"\d+ validation errors? for (\w+)\n(.*)", text, re.S)
    if pydantic_v1:
        model, body = pydantic_v1.groups()
        lines = [line for line in body.splitlines() if line.strip()]
        parts = []
        for loc, msg in zip(lines[::2], lines[1::2], strict=False):
            msg = re.sub(r"\s*\(type=.*\)$", "", msg.strip())
            if msg in ("none is not an allowed value", "field required"):
                msg = "is required"
            parts.append(f"'{loc.strip()}' {msg}")
        return f"{model}: {'; '.join(parts)}"
    lookup = re.match(
        r"(\w+) failed to lookup discriminator value from (.*)\. Discriminator property name: "
        r"(\w+), mapping: \{(.*)\}",
        text,
        re.S,
    )
    if lookup:
        model, _, prop, mapping = lookup.groups()
        options = re.findall(r'"(\w+)":', mapping)
        return f"{model}: '{prop}' must be one of {', '.join(options)}"
    if re.fullmatch(r"'\w+'", text):
        return f"missing key {text}"
    return text


class Linter:
    def __init__(
        self,
        documents: list[Document],
        catalogue: Catalogue,
        broken: dict[str, set[str]] | None = None,
    ) -> None:
        self.documents = documents
        self.catalogue = catalogue
        self.problems: list[Problem] = []
        self.env = _template_environment()
        # Names defined by documents that failed validation: already reported, so not unknown.
        broken = broken or {}
        self.tags = set(catalogue.tags) | broken.get("tags", set())
        self.broken_fields = broken.get("fields", set())
        self.broken_flows = broken.get("flow", set())
        self.broken_links = broken.get("links", set())
        self.broken_events = broken.get("event", set())
        self.broken_sequences = broken.get("sequence", set())
        self.broken_rich_menus = broken.get("rich_menu", set())
        # keyword/postback → (document, path, flow) of the first flow it starts
        self.keyword_starts: dict[str, tuple[Document, list[PathItem], str]] = {}
        self.postback_starts: dict[str, tuple[Document, list[PathItem], str]] = {}

    # ------------------------------------------------------------------ reporting

    def report(self, loc: Locator, path: Path_, message: str, key: bool = False) -> None:
        self.problems.append(loc.problem(path, message, key=key))

    def run(self) -> list[Problem]:
        for doc in self.documents:
            loc = doc.locator
            model = doc.model
            if isinstance(model, FlowDoc):
                self.flow(doc, loc, model)
            elif isinstance(model, FieldsDoc):
                self.fields(loc, model)
            elif isinstance(model, LinksDoc):
                for name, link in model.links.items():
                    self.actions(loc, ["links", name, "on_click"], link.on_click)
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

    # ------------------------------------------------------------------ names

    def tag(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.tags:
            hint = suggest(name, sorted(self.tags))
            self.report(loc, path, f"unknown tag '{name}'{hint or ' (declare it in a tags list)'}")

    def field(self, loc: Locator, path: Path_, name: str, key: bool = False) -> FieldDef | None:
        definition = self.catalogue.fields.get(name)
        if definition is None and name not in self.broken_fields:
            hint = suggest(name, sorted(self.catalogue.fields))
            self.report(loc, path, f"unknown field '{name}'{hint}", key=key)
        return definition

    def flow_named(self, loc: Locator, path: Path_, name: str) -> FlowDoc | None:
        flow = self.catalogue.flows.get(name)
        if flow is None and name not in self.broken_flows:
            hint = suggest(name, sorted(self.catalogue.flows))
            self.report(loc, path, f"unknown flow '{name}'{hint}")
        return flow

    def link(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.catalogue.links and name not in self.broken_links:
            hint = suggest(name, sorted(self.catalogue.links))
            self.report(loc, path, f"unknown link '{name}'{hint or ' (define it in a links list)'}")

    def event_named(self, loc: Locator, path: Path_, name: str) -> None:
        """Any event name may start a flow (an outside system may report events that have no
        `event:` document); but one that is a near miss of a defined event is a typo."""
        known = set(self.catalogue.events) | self.broken_events
        if name in known:
            return
        hint = suggest(name, sorted(known))
        if hint:
            self.report(loc, path, f"event '{name}' has no event document{hint}")

    def sequence_named(self, loc: Locator, path: Path_, name: str) -> SequenceDoc | None:
        sequence = self.catalogue.sequences.get(name)
        if sequence is None and name not in self.broken_sequences:
            hint = suggest(name, sorted(self.catalogue.sequences))
            self.report(loc, path, f"unknown sequence '{name}'{hint}")
        return sequence

    def rich_menu_named(self, loc: Locator, path: Path_, name: str) -> None:
        if name not in self.catalogue.rich_menus and name not in self.broken_rich_menus:
            hint = suggest(name, sorted(self.catalogue.rich_menus))
            self.report(loc, path, f"unknown rich menu '{name}'{hint}")

    # ------------------------------------------------------------------ values

    def value(self, loc: Locator, path: Path_, name: str, definition: FieldDef, value: Any) -> None:
        problem = value_problem(definition, value)
        if problem is not None:
            self.report(loc, path, f"field '{name}': {problem}")
        if is_template(value):
            self.template(loc, path, value)

    # ------------------------------------------------------------------ templates and texts

    def template(self, loc: Locator, path: Path_, text: str) -> None:
        """Compile a template; check the links it names."""
        if not is_template(text):
            return
        try:
            tree = self.env.parse(text)
            self.env.compile(tree)
        except TemplateSyntaxError as exc:
            line = f" (line {exc.lineno} of the text)" if "\n" in text.strip() else ""
            message = exc.message or "syntax error"
            unknown_filter = re.match(r"No filter named '(.+)'", message)
            if unknown_filter:
                name = unknown_filter.group(1)
                hint = suggest(name, sorted(self.env.filters))
                message = f"unknown filter '{name}'{hint}"
            self.report(loc, path, f"template error: {message.rstrip('.')}{line}")
            return
        for call in tree.find_all(nodes.Call):
            target = call.node
            if isinstance(target, nodes.Name) and target.name == "link" and call.args:
                first = call.args[0]
                if isinstance(first, nodes.Const) and isinstance(first.value, str):
                    self.link(loc, path, first.value)

    def text(self, loc: Locator, path: Path_, text: str) -> None:
        self.template(loc, path, text)
        size = messages.utf16_len(text)
        if size > messages.MAX_TEXT_UTF16:
            self.report(loc, path, _too_long(size))

    def label(self, loc: Locator, path: Path_, label: str) -> bool:
        self.template(loc, path, label)
        if len(label) > messages.MAX_LABEL:
            self.report(
                loc,
                path,
                f"label '{label}' is {len(label)} characters long;"
                f" LINE allows at most {messages.MAX_LABEL}",
            )
            return False
        return True

    def data(self, loc: Locator, path: Path_, data: str, generated: bool = False) -> bool:
        if len(data) > messages.MAX_POSTBACK_DATA:
            what = (
                "the postback data the engine makes for this choice"
                if generated
                else "postback data"
            )
            self.report(
                loc,
                path,
                f"{what} is {len(data)} characters long; LINE allows at most"
                f" {messages.MAX_POSTBACK_DATA}",
            )
            return False
        return True

    def sdk(self, loc: Locator, path: Path_, api_json: dict[str, Any], what: str) -> None:
        try:
            messages.to_sdk(api_json)
        except ValueError as exc:
            self.report(loc, path, f"invalid {what}: {sdk_reason(exc)}")

    # ------------------------------------------------------------------ messages

    def message(
        self,
        loc: Locator,
        path: Path_,
        message: MessageDef,
        keys: tuple[str, ...] | None = None,
    ) -> None:
        """A message object: its templates, LINE's limits, then the SDK's own check.

        `keys`: the message is only those keys of the YAML mapping at `path` (a sequence
        step's `text` and `quick_replies`)."""
        path = list(path)
        ok = True
        node = loc.node(path)
        if keys is not None and isinstance(node, dict):
            node = {key: value for key, value in node.items() if key in keys}
        for sub, text in self._strings(node, path):
            self.template(loc, sub, text)
        if isinstance(message, TextMessageDef):
            size = messages.utf16_len(message.text)
            if size > messages.MAX_TEXT_UTF16:
                self.report(loc, [*path, "text"], _too_long(size))
                ok = False
        replies = getattr(message, "quick_replies", None) or []
        if len(replies) > messages.MAX_QUICK_REPLIES:
            self.report(
                loc,
                [*path, "quick_replies", messages.MAX_QUICK_REPLIES],
                f"{len(replies)} quick replies; LINE allows at most {messages.MAX_QUICK_REPLIES}",
            )
            ok = False
        for sub, action in self._button_actions(path, message):
            ok = self.label(loc, [*sub, "label"], action.label) and ok
            if action.data is not None:
                ok = self.data(loc, [*sub, "data"], action.data) and ok
        if not ok:
            return  # the SDK would only repeat what is said above
        try:
            api_json = messages.build(message)
        except ValueError as exc:
            self.report(loc, path, f"invalid {_message_kind(message)} message: {sdk_reason(exc)}")
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
        if messages.utf16_len(text) <= messages.MAX_TEXT_UTF16:
            self.sdk(loc, path, messages.text_message(text), "text message")

    # ------------------------------------------------------------------ actions

    def actions(self, loc: Locator, path: Path_, actions: list[Action]) -> None:
        for index, action in enumerate(actions):
            self.action(loc, [*path, index], action)

    def action(self, loc: Locator, path: list[PathItem], action: Action) -> None:
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
                        f"the range of '{name}' goes from {_number(low)} down to {_number(high)};"
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
                    if is_template(amount):
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
        elif (
            isinstance(condition, SegmentCondition)
            and condition.segment not in self.catalogue.segments
        ):
            hint = suggest(condition.segment, sorted(self.catalogue.segments))
            self.report(loc, [*path, "segment"], f"unknown segment '{condition.segment}'{hint}")

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

    # ------------------------------------------------------------------ documents

    def fields(self, loc: Locator, doc: FieldsDoc) -> None:
        for name, definition in doc.fields.items():
            path: list[PathItem] = ["fields", name]
            if (
                definition.min is not None
                and definition.max is not None
                and definition.min > definition.max
            ):
                self.report(
                    loc,
                    [*path, "max"],
                    f"field '{name}': max ({_number(definition.max)}) is smaller than min"
                    f" ({_number(definition.min)})",
                )
            if definition.default is not None:
                problem = value_problem(definition, definition.default)
                if problem is not None:
                    self.report(loc, [*path, "default"], f"field '{name}': default {problem}")

    def broadcast_doc(self, loc: Locator, broadcast: BroadcastDoc) -> None:
        if isinstance(broadcast.segment, str):
            if broadcast.segment not in self.catalogue.segments:
                hint = suggest(broadcast.segment, sorted(self.catalogue.segments))
                self.report(loc, ["segment"], f"unknown segment '{broadcast.segment}'{hint}")
        else:
            self.condition(loc, ["segment"], broadcast.segment)
        for index, message in enumerate(broadcast.messages):
            self.message(loc, ["messages", index], message)

    def event_doc(self, loc: Locator, event: EventDoc) -> None:
        if event.when is not None:
            self.condition(loc, ["when"], event.when)
        self.actions(loc, ["do"], event.do)

    # ------------------------------------------------------------------ sequences

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
            if previous is not None:
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
        number = int(path[-1]) + 1
        if sequence.anchor is None and step.before is not None:
            self.report(
                loc,
                [*path, "before"],
                "reminders without an anchor: 'before' counts back from the datetime field"
                " named by the sequence's 'anchor' (add 'anchor: <field>', or use 'after')",
                key=True,
            )
        if sequence.anchor is not None and step.after is not None:
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
        if count > messages.MAX_MESSAGES_PER_REQUEST:
            self.report(
                loc,
                [*path, "messages", messages.MAX_MESSAGES_PER_REQUEST - extra],
                f"step {number} sends {count} messages; LINE allows at most"
                f" {messages.MAX_MESSAGES_PER_REQUEST} in one push",
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

    def flow(self, doc: Document, loc: Locator, flow: FlowDoc) -> None:
        for index, trigger in enumerate(flow.start_on):
            self.trigger(doc, loc, ["start_on", index], trigger, flow.flow)
        names = [s.ask for s in flow.steps]
        targets_ok = True
        for index, step in enumerate(flow.steps):
            targets_ok = self.step(loc, flow, ["steps", index], step, names) and targets_ok
        self.actions(loc, ["on_complete"], flow.on_complete)
        self.actions(loc, ["on_timeout"], flow.on_timeout)
        if targets_ok:  # with a missing target, "unreachable" would only be noise
            reachable = graph.reachable(flow)
            for index, step in enumerate(flow.steps):
                if step.ask not in reachable:
                    self.report(
                        loc, ["steps", index, "ask"], f"step '{step.ask}' can never be reached"
                    )

    def target(self, loc: Locator, path: Path_, flow: FlowDoc, name: str, names: list[str]) -> bool:
        if name == END or name in names:
            return True
        hint = suggest(name, [*names, END])
        self.report(loc, path, f"flow '{flow.flow}' has no step '{name}'{hint}")
        return False

    def step(
        self, loc: Locator, flow: FlowDoc, path: list[PathItem], step: Step, names: list[str]
    ) -> bool:
        ok = True
        if step.when is not None:
            self.condition(loc, [*path, "when"], step.when)
        for index, message in enumerate(step.messages):
            self.message(loc, [*path, "messages", index], message)
        if len(step.messages) + 1 > messages.MAX_MESSAGES_PER_REQUEST:
            self.report(
                loc,
                [*path, "messages", messages.MAX_MESSAGES_PER_REQUEST - 1],
                f"step '{step.ask}' sends {len(step.messages) + 1} messages with its question;"
                f" LINE allows at most {messages.MAX_MESSAGES_PER_REQUEST} in one reply",
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
                if always is not None:
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
        if step.save is not None:
            self.save(loc, path, step)
        return ok

    def question(self, loc: Locator, flow: FlowDoc, path: list[PathItem], step: Step) -> None:
        """The question as the engine sends it: the text, with the choices as quick replies."""
        self.text(loc, [*path, "text"], step.text)
        ok = messages.utf16_len(step.text) <= messages.MAX_TEXT_UTF16
        choices = step.choices or []
        if len(choices) > messages.MAX_QUICK_REPLIES:
            self.report(
                loc,
                [*path, "choices", messages.MAX_QUICK_REPLIES],
                f"step '{step.ask}' has {len(choices)} choices; LINE allows at most"
                f" {messages.MAX_QUICK_REPLIES} quick replies",
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
                    f" (also choice {labels[choice.label] + 1})",
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
        if ok:
            self.sdk(
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

    # ------------------------------------------------------------------ keywords

    def keywords(self) -> None:
        seen: list[tuple[Document, list[PathItem], KeywordRule]] = []
        for doc in self.documents:
            if not isinstance(doc.model, KeywordsDoc):
                continue
            loc = doc.locator
            for index, rule in enumerate(doc.model.keywords):
                path: list[PathItem] = ["keywords", index]
                if rule.reply is not None:
                    self.reply_text(loc, [*path, "reply"], rule.reply)
                for number, message in enumerate(rule.messages):
                    self.message(loc, [*path, "messages", number], message)
                count = len(rule.messages) + (1 if rule.reply else 0)
                if count > messages.MAX_MESSAGES_PER_REQUEST:
                    self.report(
                        loc,
                        path,
                        f"keyword '{rule.match}' replies with {count} messages; LINE allows at"
                        f" most {messages.MAX_MESSAGES_PER_REQUEST} in one reply",
                    )
                self.actions(loc, [*path, "do"], rule.do)
                self.shadowed(doc, [*path, "match"], rule, seen)
                seen.append((doc, [*path, "match"], rule))

    def shadowed(
        self,
        doc: Document,
        path: list[PathItem],
        rule: KeywordRule,
        earlier: list[tuple[Document, list[PathItem], KeywordRule]],
    ) -> None:
        if rule.mode == "exact" and normalise(rule.match) in self.keyword_starts:
            first_doc, first_path, flow = self.keyword_starts[normalise(rule.match)]
            self.report(
                doc.locator,
                path,
                f"keyword '{rule.match}' never answers: it starts flow '{flow}'"
                f" ({place(first_doc, first_path, doc.file)}) first",
            )
            return
        for other_doc, other_path, other in earlier:
            if _shadows(other, rule):
                mode = "" if other.mode == "exact" else f" ({other.mode})"
                self.report(
                    doc.locator,
                    path,
                    f"keyword '{rule.match}' never answers: the keyword '{other.match}'{mode}"
                    f" at {place(other_doc, other_path, doc.file)} matches the same text first",
                )
                return


def _shadows(first: KeywordRule, later: KeywordRule) -> bool:
    """Does every text that `later` matches already match `first` (which is tried first)?"""
    a, b = first.match, later.match
    if later.mode == "exact":
        return first.matches(b.strip())
    if later.mode == "contains" and first.mode == "contains":
        return a in b
    if later.mode == "regex" and first.mode == "regex":
        return a == b
    return False


def _segment_refs(condition: Condition) -> Iterator[str]:
    """The segments a condition names, at any depth."""
    return (c.segment for c in leaves(condition) if isinstance(c, SegmentCondition))


def _timing(step: SequenceStep) -> str:
    offset = step.after if step.after is not None else step.before
    word = "after" if step.after is not None else "before"
    text = f"{word} {format_duration(offset)}" if offset is not None else word
    return f"{text} at {step.at}" if step.at is not None else text


def _too_long(size: int) -> str:
    return f"text is {size} UTF-16 units long; LINE allows at most {messages.MAX_TEXT_UTF16}"


def _message_kind(message: MessageDef) -> str:
    return getattr(message, "KIND", "LINE")


def lint(
    documents: list[Document],
    catalogue: Catalogue,
    broken: dict[str, set[str]] | None = None,
) -> list[Problem]:
    """Every cross-document problem of the merged catalogue.

    `broken` names what documents that failed validation define (see `loader.Parsed`).
    """
    return Linter(documents, catalogue, broken).run()


__all__ = ["choice_data", "lint", "sdk_reason", "value_problem"]
