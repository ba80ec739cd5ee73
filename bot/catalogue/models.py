"""The YAML contract as pydantic models: conditions, actions, messages, triggers and documents.

Everything a business writes in `flows/*.yaml` is parsed into these classes. Models only check
the shape of one document; cross-document checks (unknown tags, unreachable steps) are lint.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from bot.catalogue.durations import Duration
from bot.catalogue.patterns import PatternError, compile_pattern, search
from bot.line.limits import (
    MENU_MAX_WIDTH,
    MENU_MIN_HEIGHT,
    MENU_MIN_WIDTH,
    RICH_MENU_SIZES,
    wide_enough,
)

NAME_PATTERN = r"^[^\s:|/]{1,100}$"  # ids of flows, steps, fields, links: no spaces or separators
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
TagName = Annotated[str, Field(min_length=1, max_length=100)]
# The largest integer an integer field holds: exact as a double (how `field_values` stores
# numbers for segments) and in every JSON reader.
MAX_INTEGER = 2**53 - 1


def _finite(value: Any) -> Any:
    """A number that is one: not NaN or infinite (the base model refuses those floats), and
    an integer within a double's range (Python's int has none; SQL and JSON have)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        raise ValueError(f"the number {str(value)[:20]}… ({len(str(value))} digits) is too large")
    return value


Scalar = Annotated[
    Union[str, int, float, bool, None],  # noqa: UP007 (kept as typing.Union on purpose)
    AfterValidator(_finite),
]
CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"  # "HH:MM", 24-hour, account time zone
_CLOCK = re.compile(CLOCK_PATTERN)


def _clock_time(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"not a clock time: {value!r} (write HH:MM, e.g. 09:00 or 18:30)")
    return value


ClockTime = Annotated[
    str,
    AfterValidator(_clock_time),
    WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN, "examples": ["10:00", "18:30"]}),
]


class Model(BaseModel):
    """Strict base: unknown keys are errors (a typo must not be silently ignored), and so is a
    number that is not one (NaN, Infinity: YAML's `.nan`, Python's JSON `NaN`)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


def _first_key(keys: tuple[str, ...]) -> Any:
    """A discriminator that picks a union member by which of `keys` the mapping holds."""

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            for key in keys:
                if key in value:
                    return key
            return None
        return getattr(value, "KIND", None)

    return pick


# --------------------------------------------------------------------------- conditions


class TagCondition(Model):
    KIND: ClassVar[str] = "tag"
    tag: TagName


FIELD_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "between", "exists")


class FieldCondition(Model):
    """`{field: age, gte: 40}`: exactly one operator."""

    KIND: ClassVar[str] = "field"
    field: Name
    eq: Scalar | date | datetime = None
    ne: Scalar | date | datetime = None
    gt: float | date | datetime | None = None
    gte: float | date | datetime | None = None
    lt: float | date | datetime | None = None
    lte: float | date | datetime | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    between: tuple[float, float] | tuple[date, date] | tuple[datetime, datetime] | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> FieldCondition:
        given = [op for op in FIELD_OPERATORS if op in self.operators_set]
        if len(given) != 1:
            raise ValueError(
                f"a field condition needs exactly one operator of {', '.join(FIELD_OPERATORS)}"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def operators_set(self) -> set[str]:
        fields = self.model_fields_set
        return {"in" if name == "in_" else name for name in fields if name != "field"}

    @property
    def operator(self) -> str:
        return next(iter(self.operators_set))

    @property
    def operand(self) -> Any:
        op = self.operator
        return getattr(self, "in_" if op == "in" else op)


class FollowedWithinCondition(Model):
    KIND: ClassVar[str] = "followed_within"
    followed_within: Duration


class ClickedCondition(Model):
    KIND: ClassVar[str] = "clicked"
    clicked: Name
    within: Duration | None = None


class AnsweredSpec(Model):
    flow: Name
    step: Name
    value: Scalar = None


class AnsweredCondition(Model):
    KIND: ClassVar[str] = "answered"
    answered: AnsweredSpec


class InSequenceCondition(Model):
    KIND: ClassVar[str] = "in_sequence"
    in_sequence: Name


class RouteCondition(Model):
    KIND: ClassVar[str] = "route"
    route: Name


class AudienceCondition(Model):
    KIND: ClassVar[str] = "audience"
    audience: Name


class SegmentCondition(Model):
    """A named segment's condition (a `segment:` document), used inside another condition."""

    KIND: ClassVar[str] = "segment"
    segment: Name


class AllCondition(Model):
    KIND: ClassVar[str] = "all"
    all: list[Condition] = Field(min_length=1)


class AnyCondition(Model):
    KIND: ClassVar[str] = "any"
    any: list[Condition] = Field(min_length=1)


class NotCondition(Model):
    KIND: ClassVar[str] = "not"
    not_: Condition = Field(alias="not")


_CONDITION_KEYS = (
    "tag",
    "field",
    "followed_within",
    "clicked",
    "answered",
    "in_sequence",
    "route",
    "audience",
    "segment",
    "all",
    "any",
    "not",
)

Condition = Annotated[
    Annotated[TagCondition, Tag("tag")]
    | Annotated[FieldCondition, Tag("field")]
    | Annotated[FollowedWithinCondition, Tag("followed_within")]
    | Annotated[ClickedCondition, Tag("clicked")]
    | Annotated[AnsweredCondition, Tag("answered")]
    | Annotated[InSequenceCondition, Tag("in_sequence")]
    | Annotated[RouteCondition, Tag("route")]
    | Annotated[AudienceCondition, Tag("audience")]
    | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")],
    Discriminator(
        _first_key(_CONDITION_KEYS),
        custom_error_type="condition",
        custom_error_message=f"a condition needs one of the keys: {', '.join(_CONDITION_KEYS)}",
    ),
]


def leaves(condition: Condition) -> Iterator[Condition]:
    """The conditions under `all`/`any`/`not`, at any depth (`{segment: …}` not expanded)."""
    if isinstance(condition, AllCondition | AnyCondition):
        for sub in condition.all if isinstance(condition, AllCondition) else condition.any:
            yield from leaves(sub)
    elif isinstance(condition, NotCondition):
        yield from leaves(condition.not_)
    else:
        yield condition


# --------------------------------------------------------------------------- messages

DatetimeMode = Literal["date", "time", "datetime"]


class PickerSpec(Model):
    """A date/time picker (LINE's datetimepicker action)."""

    mode: DatetimeMode
    initial: str | None = None
    min: str | None = None
    max: str | None = None


class ButtonAction(Model):
    """A tappable action in buttons/confirm/carousel/quick replies.

    Exactly one of `text` (the user says it), `data` (a postback), `uri` or `datetime`.
    """

    label: str = Field(min_length=1)
    text: str | None = None
    data: str | None = None
    display_text: str | None = None
    uri: str | None = None
    datetime: DatetimeMode | PickerSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ButtonAction:
        kinds = [k for k in ("text", "data", "uri") if getattr(self, k) is not None]
        if self.datetime is not None:
            if self.data is None:
                raise ValueError("a datetime action also needs `data` (the postback it sends)")
            kinds = ["datetime"]
        if len(kinds) != 1:
            raise ValueError("an action needs exactly one of: text, data, uri, datetime")
        return self


class TextMessageDef(Model):
    KIND: ClassVar[str] = "text"
    text: str = Field(min_length=1)
    quick_replies: list[ButtonAction] | None = None


class ImageSpec(Model):
    url: str
    preview: str | None = None


class ImageMessageDef(Model):
    KIND: ClassVar[str] = "image"
    image: ImageSpec


class StickerSpec(Model):
    package_id: str
    sticker_id: str


class StickerMessageDef(Model):
    KIND: ClassVar[str] = "sticker"
    sticker: StickerSpec


class ButtonsSpec(Model):
    text: str = Field(min_length=1)
    title: str | None = None
    image: str | None = None
    alt_text: str | None = None
    actions: list[ButtonAction] = Field(min_length=1, max_length=4)


class ButtonsMessageDef(Model):
    KIND: ClassVar[str] = "buttons"
    buttons: ButtonsSpec


class ConfirmSpec(Model):
    text: str = Field(min_length=1)
    alt_text: str | None = None
    actions: list[ButtonAction] = Field(min_length=2, max_length=2)


class ConfirmMessageDef(Model):
    KIND: ClassVar[str] = "confirm"
    confirm: ConfirmSpec


class CarouselColumn(Model):
    text: str = Field(min_length=1)
    title: str | None = None
    image: str | None = None
    actions: list[ButtonAction] = Field(min_length=1, max_length=3)


class CarouselSpec(Model):
    alt_text: str | None = None
    columns: list[CarouselColumn] = Field(min_length=1, max_length=10)


class CarouselMessageDef(Model):
    KIND: ClassVar[str] = "carousel"
    carousel: CarouselSpec


class FlexSpec(Model):
    alt_text: str = Field(min_length=1)
    contents: dict[str, Any]


class FlexMessageDef(Model):
    KIND: ClassVar[str] = "flex"
    flex: FlexSpec


_MESSAGE_KEYS = ("text", "image", "sticker", "buttons", "confirm", "carousel", "flex")

MessageDef = Annotated[
    Annotated[TextMessageDef, Tag("text")]
    | Annotated[ImageMessageDef, Tag("image")]
    | Annotated[StickerMessageDef, Tag("sticker")]
    | Annotated[ButtonsMessageDef, Tag("buttons")]
    | Annotated[ConfirmMessageDef, Tag("confirm")]
    | Annotated[CarouselMessageDef, Tag("carousel")]
    | Annotated[FlexMessageDef, Tag("flex")],
    Discriminator(
        _first_key(_MESSAGE_KEYS),
        custom_error_type="message",
        custom_error_message=f"a message needs one of the keys: {', '.join(_MESSAGE_KEYS)}",
    ),
]

# --------------------------------------------------------------------------- actions


class TagAction(Model):
    KIND: ClassVar[str] = "tag"
    tag: TagName | list[TagName]

    @property
    def names(self) -> list[str]:
        return [self.tag] if isinstance(self.tag, str) else list(self.tag)


class UntagAction(Model):
    KIND: ClassVar[str] = "untag"
    untag: TagName | list[TagName]

    @property
    def names(self) -> list[str]:
        return [self.untag] if isinstance(self.untag, str) else list(self.untag)


class TagBySpec(Model):
    field: Name
    ranges: dict[TagName, tuple[float, float]] = Field(min_length=1)


class TagByAction(Model):
    """Tag by which range a numeric field falls in (`{30代: [30, 39]}`)."""

    KIND: ClassVar[str] = "tag_by"
    tag_by: TagBySpec


class SetAction(Model):
    KIND: ClassVar[str] = "set"
    set: dict[Name, Scalar | date | datetime] = Field(min_length=1)  # YAML dates stay dates


class IncrementAction(Model):
    KIND: ClassVar[str] = "increment"
    increment: dict[Name, float | str] = Field(min_length=1)


class ClearAction(Model):
    KIND: ClassVar[str] = "clear"
    clear: Name | list[Name]

    @property
    def names(self) -> list[str]:
        return [self.clear] if isinstance(self.clear, str) else list(self.clear)


class SayAction(Model):
    KIND: ClassVar[str] = "say"
    say: str = Field(min_length=1)


class SendAction(Model):
    KIND: ClassVar[str] = "send"
    send: list[MessageDef] = Field(min_length=1)

    @field_validator("send", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class StartFlowAction(Model):
    KIND: ClassVar[str] = "start_flow"
    start_flow: Name


class StartSequenceAction(Model):
    KIND: ClassVar[str] = "start_sequence"
    start_sequence: Name


class StopSequenceAction(Model):
    KIND: ClassVar[str] = "stop_sequence"
    stop_sequence: Name


class RichMenuAction(Model):
    KIND: ClassVar[str] = "rich_menu"
    rich_menu: Name


_ACTION_KEYS = (
    "tag",
    "untag",
    "tag_by",
    "set",
    "increment",
    "clear",
    "say",
    "send",
    "start_flow",
    "start_sequence",
    "stop_sequence",
    "rich_menu",
)

Action = Annotated[
    Annotated[TagAction, Tag("tag")]
    | Annotated[UntagAction, Tag("untag")]
    | Annotated[TagByAction, Tag("tag_by")]
    | Annotated[SetAction, Tag("set")]
    | Annotated[IncrementAction, Tag("increment")]
    | Annotated[ClearAction, Tag("clear")]
    | Annotated[SayAction, Tag("say")]
    | Annotated[SendAction, Tag("send")]
    | Annotated[StartFlowAction, Tag("start_flow")]
    | Annotated[StartSequenceAction, Tag("start_sequence")]
    | Annotated[StopSequenceAction, Tag("stop_sequence")]
    | Annotated[RichMenuAction, Tag("rich_menu")],
    Discriminator(
        _first_key(_ACTION_KEYS),
        custom_error_type="action",
        custom_error_message=f"an action needs one of the keys: {', '.join(_ACTION_KEYS)}",
    ),
]

# --------------------------------------------------------------------------- triggers


class FollowTrigger(Model):
    KIND: ClassVar[str] = "follow"
    follow: Literal["new", "unblocked", "any"]


class KeywordTrigger(Model):
    KIND: ClassVar[str] = "keyword"
    keyword: str = Field(min_length=1)


class PostbackTrigger(Model):
    KIND: ClassVar[str] = "postback"
    postback: str = Field(min_length=1, max_length=300)


class FlowCompletedTrigger(Model):
    KIND: ClassVar[str] = "flow_completed"
    flow_completed: Name


class TagAddedTrigger(Model):
    KIND: ClassVar[str] = "tag_added"
    tag_added: TagName


class FieldSetTrigger(Model):
    KIND: ClassVar[str] = "field_set"
    field_set: Name


class EventTrigger(Model):
    KIND: ClassVar[str] = "event"
    event: Name


class BlockedTrigger(Model):
    KIND: ClassVar[str] = "blocked"
    blocked: Literal[True]


_TRIGGER_KEYS = (
    "follow",
    "keyword",
    "postback",
    "flow_completed",
    "tag_added",
    "field_set",
    "event",
    "blocked",
)

Trigger = Annotated[
    Annotated[FollowTrigger, Tag("follow")]
    | Annotated[KeywordTrigger, Tag("keyword")]
    | Annotated[PostbackTrigger, Tag("postback")]
    | Annotated[FlowCompletedTrigger, Tag("flow_completed")]
    | Annotated[TagAddedTrigger, Tag("tag_added")]
    | Annotated[FieldSetTrigger, Tag("field_set")]
    | Annotated[EventTrigger, Tag("event")]
    | Annotated[BlockedTrigger, Tag("blocked")],
    Discriminator(
        _first_key(_TRIGGER_KEYS),
        custom_error_type="trigger",
        custom_error_message=f"a trigger needs one of the keys: {', '.join(_TRIGGER_KEYS)}",
    ),
]

# --------------------------------------------------------------------------- fields

FieldType = Literal[
    "text", "integer", "number", "choice", "boolean", "email", "phone", "date", "datetime"
]


class FieldDef(Model):
    """A typed friend field (友だち情報欄)."""

    type: FieldType
    label: str | None = None
    choices: list[str] | None = None
    min: float | None = None
    max: float | None = None
    default: Scalar = None

    @model_validator(mode="after")
    def _choices_only_for_choice(self) -> FieldDef:
        if self.type == "choice" and not self.choices:
            raise ValueError("a field of type choice needs `choices`")
        if self.type != "choice" and self.choices is not None:
            raise ValueError("`choices` is only for fields of type choice")
        if (self.min is not None or self.max is not None) and self.type not in (
            "integer",
            "number",
        ):
            raise ValueError("`min`/`max` are only for integer and number fields")
        return self


# --------------------------------------------------------------------------- flows

InputType = Literal["text", "integer", "number", "email", "phone", "date", "datetime"]


class Choice(Model):
    """One answer of a question: a quick reply; typing its label counts too."""

    label: str = Field(min_length=1)
    value: Scalar = None  # what is stored as the answer (default: the label)
    data: str | None = None  # postback data (default: generated by the engine)
    datetime: DatetimeMode | PickerSpec | None = None  # a date/time picker instead of a button
    do: list[Action] = Field(default_factory=list)
    next: Name | None = None

    @property
    def answer_value(self) -> Any:
        return self.label if self.value is None else self.value


class NextRule(Model):
    """`{if: <condition>, goto: step}`; without `if` it always matches."""

    if_: Condition | None = Field(default=None, alias="if")
    goto: Name


END = "end"  # the reserved `goto`/`next` target that completes a flow


class Step(Model):
    """One question (`ask: id`)."""

    ask: Name
    text: str = Field(min_length=1)
    messages: list[MessageDef] = Field(default_factory=list)  # sent before the question
    choices: list[Choice] | None = None
    input: InputType | None = None
    save: Name | None = None
    invalid: str | None = None
    max_retries: int = Field(default=2, ge=0, le=10)
    on_invalid: list[Action] = Field(default_factory=list)
    when: Condition | None = None
    do: list[Action] = Field(default_factory=list)
    next: Name | list[NextRule] | None = None

    @model_validator(mode="after")
    def _choices_or_input(self) -> Step:
        if self.choices is not None and self.input is not None:
            raise ValueError("a step has either `choices` or `input`, not both")
        if self.choices is not None and not self.choices:
            raise ValueError("`choices` needs at least one choice")
        if self.ask == END:
            raise ValueError(
                f"`{END}` is reserved (it completes the flow); name the step otherwise"
            )
        return self

    @property
    def kind(self) -> str:
        if self.choices is not None:
            return "choice"
        return self.input or "text"


class FlowDoc(Model):
    """A questionnaire (アンケート): a state machine of steps."""

    flow: Name
    title: str | None = None
    description: str | None = None
    start_on: list[Trigger] = Field(default_factory=list)
    timeout: Duration | None = None
    # always: start again from the top; never: at most once per friend;
    # resume: if the friend is mid-flow, ask the current question again instead
    restart: Literal["always", "never", "resume"] = "always"
    steps: list[Step] = Field(min_length=1)
    on_complete: list[Action] = Field(default_factory=list)
    on_timeout: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_steps(self) -> FlowDoc:
        seen: set[str] = set()
        for step in self.steps:
            if step.ask in seen:
                raise ValueError(f"step `{step.ask}` is defined twice")
            seen.add(step.ask)
        return self

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.ask == name:
                return step
        raise KeyError(name)


# --------------------------------------------------------------------------- other documents


class FieldsDoc(Model):
    fields: dict[Name, FieldDef]


class TagsDoc(Model):
    tags: list[TagName]


class KeywordRule(Model):
    """An auto reply (自動応答): a free reply to matching text."""

    # `mode` before `match`: the pattern's check needs the mode, and reports at the pattern.
    mode: Literal["exact", "contains", "regex"] = "exact"
    match: str = Field(min_length=1)
    reply: str | None = None
    messages: list[MessageDef] = Field(default_factory=list)
    do: list[Action] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _runnable(cls, match: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "regex":
            try:
                compile_pattern(match)
            except PatternError as exc:
                raise ValueError(f"not a regular expression RE2 can run: {exc}") from None
        return match

    @model_validator(mode="after")
    def _valid(self) -> KeywordRule:
        if not (self.reply or self.messages or self.do):
            raise ValueError("a keyword needs `reply`, `messages` or `do`")
        return self

    def matches(self, text: str) -> bool:
        text = text.strip()
        if self.mode == "exact":
            return text == self.match
        if self.mode == "contains":
            return self.match in text
        return search(self.match, text)  # RE2: linear time, whatever the pattern


class KeywordsDoc(Model):
    keywords: list[KeywordRule]


class LinkDef(Model):
    url: str = Field(pattern=r"^https?://")
    on_click: list[Action] = Field(default_factory=list)


class LinksDoc(Model):
    links: dict[Name, LinkDef]


class EventDoc(Model):
    """What happens when an outside system reports an event (`POST /api/v1/events`).

    `when` is checked against the friend; if it holds, `do` runs with the event's
    properties as `event.*` in templates (trigger and recommendation messages)."""

    event: Name
    description: str | None = None
    when: Condition | None = None
    do: list[Action] = Field(min_length=1)


# --------------------------------------------------------------------------- sequences


class SequenceStep(Model):
    """One message of a sequence, due `after` enrolment or `before` the anchor's datetime."""

    after: Duration | None = None  # since enrolment (plain sequences)
    before: Duration | None = None  # before the anchor field's datetime (reminders)
    at: ClockTime | None = None  # "HH:MM" account time: the step goes at that clock time
    when: Condition | None = None  # evaluated when the step is due; false → step skipped
    text: str | None = Field(default=None, min_length=1)
    quick_replies: list[ButtonAction] | None = None  # only with text
    messages: list[MessageDef] = Field(default_factory=list)
    do: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> SequenceStep:
        if self.after is not None and self.before is not None:
            raise ValueError(
                "a step has either `after` (since enrolment) or `before` (before the anchor),"
                " not both"
            )
        if self.after is None and self.before is None:
            raise ValueError(
                "a step needs `after` (time since enrolment, e.g. 1d) or `before` (time before"
                " the anchor, e.g. 2h)"
            )
        if self.text is None and not self.messages and not self.do:
            raise ValueError("a step needs `text`, `messages` or `do` (it has nothing to send)")
        if self.quick_replies is not None and self.text is None:
            raise ValueError("`quick_replies` go with `text`; this step has no text")
        return self


class SequenceDoc(Model):
    """Step delivery (ステップ配信); with `anchor`, reminders (リマインダ配信).

    A reminder (with `anchor`) that has no `start_on` starts on `{field_set: <anchor>}`."""

    sequence: Name
    title: str | None = None
    description: str | None = None
    anchor: Name | None = None  # a datetime field → a reminder sequence (steps use `before`)
    start_on: list[Trigger] = Field(default_factory=list)
    stop_on: list[Trigger] = Field(default_factory=list)
    quiet_hours: tuple[ClockTime, ClockTime] | None = None  # due inside → deferred to the end
    # never: a friend already enrolled (or done) is not enrolled again; always: enrolled anew
    restart: Literal["never", "always"] = "never"
    steps: list[SequenceStep] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _implied_start(cls, data: Any) -> Any:
        """A reminder without `start_on` starts when its anchor field is set."""
        anchor = data.get("anchor") if isinstance(data, dict) else None
        if isinstance(anchor, str) and not data.get("start_on"):
            data = {**data, "start_on": [{"field_set": anchor}]}
        return data

    @property
    def is_reminder(self) -> bool:
        return self.anchor is not None


class SegmentDoc(Model):
    """A named segment: one condition reused by broadcasts, the API and the CLI by name."""

    segment: Name
    title: str | None = None
    description: str | None = None
    condition: Condition


class BroadcastDoc(Model):
    """A segment broadcast (セグメント配信) kept in YAML. With `send_at` (account time unless
    it has an offset) `stepline worker` sends it once at that time; without, it is sent by
    `stepline broadcast send NAME`."""

    broadcast: Name
    title: str | None = None
    description: str | None = None
    segment: Name | Condition  # a segment's name, or a condition
    send_at: datetime | None = None
    messages: list[MessageDef] = Field(min_length=1, max_length=5)
    dry_run: bool = False


# --------------------------------------------------------------------------- rich menus

ALIAS_PATTERN = r"^[a-z0-9_-]{1,32}$"  # LINE's rule for alias ids (the spec: lowercase)


class MenuSize(Model):
    """An explicit rich menu size in pixels (LINE: width 800–2500, height ≥ 250, w/h ≥ 1.45)."""

    width: int = Field(ge=MENU_MIN_WIDTH, le=MENU_MAX_WIDTH)
    height: int = Field(ge=MENU_MIN_HEIGHT)

    @model_validator(mode="after")
    def _ratio(self) -> MenuSize:
        if not wide_enough(self.width, self.height):
            raise ValueError(
                f"{self.width}×{self.height} is too tall: LINE needs width/height ≥ 1.45"
            )
        return self


class RichMenuTap(Model):
    """What tapping an area does: `do` actions (sent as a postback), or one of `uri`,
    `message` (the user says it), `switch` (to another menu's alias, like a tab),
    `datetime` (a picker; `save` stores the pick in a field) or `postback` (raw data that
    `{postback: …}` triggers match). `do` may go with `switch`, `datetime` and `postback`."""

    do: list[Action] = Field(default_factory=list)
    uri: str | None = Field(default=None, pattern=r"^(https?|line|tel):")
    message: str | None = Field(default=None, min_length=1, max_length=300)
    switch: Annotated[str, Field(pattern=ALIAS_PATTERN)] | None = None
    datetime: DatetimeMode | PickerSpec | None = None
    save: Name | None = None  # with `datetime`: the field the picked value goes to
    postback: str | None = Field(default=None, min_length=1, max_length=300)
    display_text: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _one_kind(self) -> RichMenuTap:
        kinds = [
            k for k in ("uri", "message", "switch", "datetime", "postback") if getattr(self, k)
        ]
        if len(kinds) > 1:
            raise ValueError(f"a tap does one thing; this one has {' and '.join(kinds)}")
        if not kinds and not self.do:
            raise ValueError(
                "a tap needs `do`, `uri`, `message`, `switch`, `datetime` or `postback`"
            )
        if kinds and kinds[0] in ("uri", "message") and self.do:
            raise ValueError(f"`do` cannot go with `{kinds[0]}`: LINE sends the bot nothing then")
        if self.save is not None and self.datetime is None:
            raise ValueError("`save` goes with `datetime` (the field the picked value goes to)")
        if self.display_text is not None and kinds and kinds[0] != "postback":
            raise ValueError(
                f"`display_text` goes with `do` or `postback` (LINE shows no text for `{kinds[0]}`)"
            )
        return self

    @property
    def kind(self) -> str:
        """uri | message | switch | datetime | postback (`do` alone is a postback too)."""
        for key in ("uri", "message", "switch", "datetime"):
            if getattr(self, key):
                return key
        return "postback"


class RichMenuArea(Model):
    """A tappable rectangle: `bounds` is [x, y, width, height] in image pixels."""

    bounds: tuple[int, int, int, int]
    tap: RichMenuTap
    label: str | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _positive(self) -> RichMenuArea:
        x, y, width, height = self.bounds
        if x < 0 or y < 0 or width <= 0 or height <= 0:
            raise ValueError("bounds are [x, y, width, height]: x and y ≥ 0, width and height > 0")
        return self


class RichMenuDoc(Model):
    """A rich menu (リッチメニュー). `show_when` picks it per friend (first matching menu in
    catalogue order wins); with none matching, the `default: true` menu shows. Without
    `image`, `stepline richmenu render` (and sync) draw one from the area labels."""

    rich_menu: Name
    title: str | None = None
    description: str | None = None
    image: str | None = Field(default=None, min_length=1)  # relative to the flows folder
    size: Literal["large", "compact"] | MenuSize = "large"
    chat_bar: str = Field(default="メニュー", min_length=1, max_length=14)
    selected: bool = False  # shown opened when the chat opens
    alias: Annotated[str, Field(pattern=ALIAS_PATTERN)] | None = None
    show_when: Condition | None = None
    default: bool = False
    areas: list[RichMenuArea] = Field(min_length=1)

    @field_validator("size", mode="before")
    @classmethod
    def _explicit_size(cls, value: Any) -> Any:
        """An explicit size's own problem (too tall, too wide), not "must be large"."""
        if isinstance(value, dict):
            try:
                return MenuSize.model_validate(value)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                raise ValueError(f"{where + ': ' if where else ''}{error['msg']}") from None
        return value

    @property
    def pixels(self) -> tuple[int, int]:
        if isinstance(self.size, str):
            return RICH_MENU_SIZES[self.size]
        return self.size.width, self.size.height

    @model_validator(mode="after")
    def _default_has_no_rule(self) -> RichMenuDoc:
        if self.default and self.show_when is not None:
            raise ValueError(
                "the default menu shows when no `show_when` matches; it has no `show_when`"
            )
        return self


DOCUMENT_KINDS: dict[str, type[Model]] = {
    "fields": FieldsDoc,
    "tags": TagsDoc,
    "flow": FlowDoc,
    "keywords": KeywordsDoc,
    "links": LinksDoc,
    "event": EventDoc,
    "sequence": SequenceDoc,
    "segment": SegmentDoc,
    "broadcast": BroadcastDoc,
    "rich_menu": RichMenuDoc,
}

for _model in (
    AllCondition,
    AnyCondition,
    NotCondition,
    NextRule,
    Step,
    FlowDoc,
    EventDoc,
    SequenceStep,
    SequenceDoc,
    RichMenuTap,
    RichMenuArea,
    RichMenuDoc,
):
    _model.model_rebuild()


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
