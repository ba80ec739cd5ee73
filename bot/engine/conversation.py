"""Running questionnaires: start, ask, answer, branch, skip, retry, complete, time out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalogue.catalogue import Catalogue
from bot.catalogue.graph import START, default_next
from bot.catalogue.loader import parse_flow_document
from bot.catalogue.messages import picker_action
from bot.catalogue.models import END, Choice, FlowCompletedTrigger, FlowDoc, Step
from bot.catalogue.postbacks import POSTBACK_PREFIX, choice_data
from bot.catalogue.text import normalise
from bot.engine import conditions
from bot.engine.actions import run_actions, set_field
from bot.engine.fields import InvalidValue, coerce, parse_input
from bot.engine.machines import CompiledFlow, MachineCache
from bot.engine.turn import Turn
from storage.models import Conversation, ConversationStatus, FlowVersion
from storage.upsert import insert_ignore

log = logging.getLogger(__name__)

DEFAULT_INVALID_CHOICE = "下のボタンからお選びください"
DEFAULT_INVALID_INPUT = "もう一度入力してください"
MAX_SKIPS = 200  # more skips than steps would mean a cycle of false `when`s


@dataclass(frozen=True)
class ChoicePostback:
    flow: str
    step: str
    index: int

    @classmethod
    def parse(cls, data: str) -> ChoicePostback | None:
        parts = data.split("|")
        if len(parts) != 4 or parts[0] != POSTBACK_PREFIX or not parts[3].isdigit():
            return None
        return cls(parts[1], parts[2], int(parts[3]))


@dataclass(frozen=True)
class Answer:
    """What the friend did: typed text, or tapped a postback (with picker params)."""

    text: str | None = None
    postback: str | None = None
    params: dict[str, Any] | None = None


class Conversations:
    """The conversation engine over conversation rows and shared compiled machines."""

    def __init__(self, machines: MachineCache | None = None) -> None:
        self.machines = machines or MachineCache()

    # ------------------------------------------------------------------ lookup

    def active(self, session: Session, friend_id: int) -> Conversation | None:
        return session.scalars(
            select(Conversation)
            .where(
                Conversation.friend_id == friend_id,
                Conversation.status == ConversationStatus.ACTIVE,
            )
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()

    def compiled(self, session: Session, catalogue: Catalogue, conv: Conversation) -> CompiledFlow:
        """The machine of the version this conversation started on (maybe no longer current)."""
        current = catalogue.flow_sources.get(conv.flow)
        if current is not None and current.content_hash == conv.flow_version:
            flow = catalogue.flows[conv.flow]
            return self.machines.get(conv.flow, conv.flow_version, lambda: flow)

        def load_old() -> FlowDoc:
            text = session.scalar(
                select(FlowVersion.yaml_text).where(
                    FlowVersion.flow == conv.flow, FlowVersion.content_hash == conv.flow_version
                )
            )
            if text is None:
                raise LookupError(f"flow version {conv.flow}@{conv.flow_version[:12]} is missing")
            return parse_flow_document(text)

        return self.machines.get(conv.flow, conv.flow_version, load_old)

    # ------------------------------------------------------------------ start

    def start(self, turn: Turn, name: str) -> bool:
        """Start flow `name` for the friend (respecting its restart policy); True if started."""
        session = turn.record.session
        flow = turn.catalogue.flows.get(name)
        if flow is None:
            log.warning("%s: start of unknown flow %s ignored", turn.cause, name)
            return False
        current = self.active(session, turn.record.friend.id)
        if (
            current is not None
            and current.expires_at is not None
            and current.expires_at <= turn.now
        ):
            self.expire(turn, current)  # timed out: abandoned (on_timeout), not replaced
            current = None
        if flow.restart == "never" and self._ever_started(session, turn.record.friend.id, name):
            return False
        if current is not None and current.flow == name and flow.restart == "resume":
            compiled = self.compiled(session, turn.catalogue, current)
            self._ask(turn, current, compiled.flow, compiled.flow.step(current.state))
            return True
        if current is not None:
            self._end(turn, current, ConversationStatus.REPLACED)
        source = turn.catalogue.flow_sources[name]
        insert_ignore(
            session,
            FlowVersion.__table__,  # type: ignore[arg-type]
            {
                "flow": name,
                "content_hash": source.content_hash,
                "yaml_text": source.text,
                "created_at": turn.now,
            },
            ["flow", "content_hash"],
        )
        conv = Conversation(
            friend_id=turn.record.friend.id,
            flow=name,
            flow_version=source.content_hash,
            state=START,
            status=ConversationStatus.ACTIVE,
            retries=0,
            started_at=turn.now,
            updated_at=turn.now,
        )
        session.add(conv)
        session.flush()
        compiled = self.compiled(session, turn.catalogue, conv)
        self._advance(turn, conv, compiled, compiled.flow.steps[0].ask)
        return True

    def _ever_started(self, session: Session, friend_id: int, name: str) -> bool:
        return (
            session.scalar(
                select(Conversation.id)
                .where(Conversation.friend_id == friend_id, Conversation.flow == name)
                .limit(1)
            )
            is not None
        )

    # ------------------------------------------------------------------ answer

    def answer(self, turn: Turn, conv: Conversation, answer: Answer) -> bool:
        """Apply the friend's answer to the current step; False if it was not an answer at all
        (a stale button from another question), so the caller can treat it otherwise."""
        session = turn.record.session
        compiled = self.compiled(session, turn.catalogue, conv)
        flow = compiled.flow
        step = flow.step(conv.state)
        if step.choices is not None:
            picked = self._match_choice(flow, step, answer)
            if picked is None:
                if answer.postback is not None:
                    return False
                return self._invalid(turn, conv, compiled, step, turn.catalogue)
            index, value = picked
            choice = step.choices[index]
            self._accept(turn, conv, compiled, step, value, choice)
            return True
        if answer.text is None:
            if answer.postback is not None and answer.params:
                value = _picker_value(answer.params)
                if value is not None and step.input in ("date", "datetime", "text"):
                    return self._accept_input(turn, conv, compiled, step, value)
            return False
        return self._accept_input(turn, conv, compiled, step, answer.text)

    def accepts(self, turn: Turn, conv: Conversation, answer: Answer) -> bool:
        """Would `answer` be a valid answer to the current step? (No side effects.)"""
        compiled = self.compiled(turn.record.session, turn.catalogue, conv)
        step = compiled.flow.step(conv.state)
        if step.choices is not None:
            return self._match_choice(compiled.flow, step, answer) is not None
        if answer.text is None:
            return False
        try:
            value = parse_input(step.input or "text", answer.text, turn.record.tz)
            definition = turn.catalogue.fields.get(step.save) if step.save else None
            if definition is not None:
                coerce(definition, value, turn.record.tz)
        except InvalidValue:
            return False
        return True

    def _accept_input(
        self, turn: Turn, conv: Conversation, compiled: CompiledFlow, step: Step, raw: str
    ) -> bool:
        try:
            value = parse_input(step.input or "text", raw, turn.record.tz)
            if step.save:
                definition = turn.catalogue.fields.get(step.save)
                if definition is not None:
                    value = coerce(definition, value, turn.record.tz)
        except InvalidValue:
            return self._invalid(turn, conv, compiled, step, turn.catalogue)
        self._accept(turn, conv, compiled, step, value, None)
        return True

    def _match_choice(self, flow: FlowDoc, step: Step, answer: Answer) -> tuple[int, Any] | None:
        assert step.choices is not None
        if answer.postback is not None:
            index = _postback_choice(flow, step, answer.postback)
            if index is None:
                return None
            choice = step.choices[index]
            if choice.datetime is not None:
                value = _picker_value(answer.params or {})
                return None if value is None else (index, value)
            return index, choice.answer_value
        if answer.text is not None:
            typed = normalise(answer.text)
            for index, choice in enumerate(step.choices):
                if choice.datetime is None and normalise(choice.label) == typed:
                    return index, choice.answer_value
        return None

    def _accept(
        self,
        turn: Turn,
        conv: Conversation,
        compiled: CompiledFlow,
        step: Step,
        value: Any,
        choice: Choice | None,
    ) -> None:
        record = turn.record
        record.record_answer(conv.id, conv.flow, step.ask, value)
        reason = f"{conv.flow}/{step.ask}"
        if step.save:
            try:
                set_field(turn, step.save, value)
            except InvalidValue as exc:
                log.warning("%s: could not save %r into %s: %s", reason, value, step.save, exc)
        if choice is not None:
            run_actions(turn, choice.do, reason)
        run_actions(turn, step.do, reason)
        conv.retries = 0
        if self._switch_requested(turn, conv):
            return
        dest = (
            choice.next
            if choice is not None and choice.next
            else self.next_of(turn, compiled, step)
        )
        self._advance(turn, conv, compiled, dest)

    def _invalid(
        self,
        turn: Turn,
        conv: Conversation,
        compiled: CompiledFlow,
        step: Step,
        catalogue: Catalogue,
    ) -> bool:
        conv.retries += 1
        conv.updated_at = turn.now
        if conv.retries > step.max_retries:
            # Given up: run on_invalid, then move on as if the step were skipped.
            conv.retries = 0
            run_actions(turn, step.on_invalid, f"{conv.flow}/{step.ask}:invalid")
            if self._switch_requested(turn, conv):
                return True
            self._advance(turn, conv, compiled, self.next_of(turn, compiled, step))
            return True
        default = DEFAULT_INVALID_CHOICE if step.choices is not None else DEFAULT_INVALID_INPUT
        turn.say(step.invalid or default)
        self._ask(turn, conv, compiled.flow, step, with_messages=False)
        return True

    # ------------------------------------------------------------------ moving

    def next_of(self, turn: Turn, compiled: CompiledFlow, step: Step) -> str:
        """The step-level destination after `step`: its first matching `next` rule, else the
        following step (the same reading as `graph.step_level_targets`)."""
        nxt = step.next
        if isinstance(nxt, str):
            return nxt
        for rule in nxt or []:
            if rule.if_ is None or conditions.evaluate(rule.if_, turn.record):
                return rule.goto
        return default_next(compiled.flow, step)

    def _advance(self, turn: Turn, conv: Conversation, compiled: CompiledFlow, dest: str) -> None:
        """Move to `dest`, skipping steps whose `when` is false, then ask or complete."""
        flow = compiled.flow
        for _ in range(MAX_SKIPS):
            if dest == END:
                compiled.move(conv, END)
                self._complete(turn, conv, flow)
                return
            step = flow.step(dest)
            if step.when is None or conditions.evaluate(step.when, turn.record):
                compiled.move(conv, dest)
                conv.retries = 0
                self._ask(turn, conv, flow, step)
                return
            dest = self.next_of(turn, compiled, step)
        raise RuntimeError(f"flow {flow.flow}: too many skipped steps (a cycle of `when`s?)")

    def _ask(
        self,
        turn: Turn,
        conv: Conversation,
        flow: FlowDoc,
        step: Step,
        *,
        with_messages: bool = True,
    ) -> None:
        if with_messages:
            for message in step.messages:
                turn.send(message)
        quick: list[dict[str, Any]] = []
        for index, choice in enumerate(step.choices or []):
            data = choice.data or choice_data(conv.flow, step.ask, index)
            label = turn.render(choice.label)
            if choice.datetime is not None:
                quick.append(picker_action(label, data, choice.datetime))
            else:
                quick.append(
                    {"type": "postback", "label": label, "data": data, "displayText": label}
                )
        turn.say(step.text, quick or None)
        conv.updated_at = turn.now
        conv.expires_at = turn.now + flow.timeout if flow.timeout else None

    def ask_again(self, turn: Turn, conv: Conversation) -> None:
        """The current question once more (its text and quick replies, not its extra
        messages): the friend's quick replies were hidden by something else they did."""
        compiled = self.compiled(turn.record.session, turn.catalogue, conv)
        self._ask(turn, conv, compiled.flow, compiled.flow.step(conv.state), with_messages=False)

    def _complete(self, turn: Turn, conv: Conversation, flow: FlowDoc) -> None:
        conv.status = ConversationStatus.COMPLETED
        conv.ended_at = turn.now
        conv.updated_at = turn.now
        conv.expires_at = None
        run_actions(turn, flow.on_complete, f"{flow.flow}:complete")
        turn.emit(FlowCompletedTrigger(flow_completed=flow.flow))

    def _end(self, turn: Turn, conv: Conversation, status: ConversationStatus) -> None:
        conv.status = status
        conv.ended_at = turn.now
        conv.updated_at = turn.now
        conv.expires_at = None

    def _switch_requested(self, turn: Turn, conv: Conversation) -> bool:
        """A `start_flow` action ran: the current flow ends here and the new one starts."""
        if turn.requested_flow is None:
            return False
        requested, turn.requested_flow = turn.requested_flow, None
        # `start` refuses an unknown flow (False), and the current one then carries on.
        return self.start(turn, requested)

    def expire(self, turn: Turn, conv: Conversation) -> None:
        """The friend did not answer within the flow's timeout: abandon, run on_timeout."""
        compiled = self.compiled(turn.record.session, turn.catalogue, conv)
        self._end(turn, conv, ConversationStatus.ABANDONED)
        run_actions(turn, compiled.flow.on_timeout, f"{conv.flow}:timeout")

    def cancel(self, turn: Turn, conv: Conversation) -> None:
        self._end(turn, conv, ConversationStatus.CANCELLED)


def _postback_choice(flow: FlowDoc, step: Step, data: str) -> int | None:
    """Which choice of `step` a postback's data names (ours, or a choice's own `data`)."""
    choices = step.choices or []
    parsed = ChoicePostback.parse(data)
    if parsed and parsed.flow == flow.flow and parsed.step == step.ask:
        return parsed.index if parsed.index < len(choices) else None
    for index, choice in enumerate(choices):
        if choice.data is not None and choice.data == data:
            return index
    return None


def _picker_value(params: dict[str, Any]) -> str | None:
    for key in ("datetime", "date", "time"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None
