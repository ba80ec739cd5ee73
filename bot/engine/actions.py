"""The action list (`do:`), shared by choices, steps, keywords, flows and the admin API."""

from __future__ import annotations

import logging
from typing import Any

from bot.catalogue.models import (
    Action,
    ClearAction,
    FieldSetTrigger,
    IncrementAction,
    RichMenuAction,
    SayAction,
    SendAction,
    SetAction,
    StartFlowAction,
    StartSequenceAction,
    StopSequenceAction,
    TagAction,
    TagAddedTrigger,
    TagByAction,
    UntagAction,
)
from bot.engine.fields import InvalidValue
from bot.engine.turn import Turn

log = logging.getLogger(__name__)


def run_actions(turn: Turn, actions: list[Action], reason: str) -> None:
    for action in actions:
        run_action(turn, action, reason)


def add_tag(turn: Turn, name: str, reason: str) -> None:
    if turn.record.add_tag(name, reason):
        turn.emit(TagAddedTrigger(tag_added=name))


def set_field(turn: Turn, name: str, value: Any) -> None:
    if turn.record.set_field(name, value):
        turn.emit(FieldSetTrigger(field_set=name))


def run_action(turn: Turn, action: Action, reason: str) -> None:
    record = turn.record
    if isinstance(action, TagAction):
        for name in action.names:
            add_tag(turn, name, reason)
    elif isinstance(action, UntagAction):
        for name in action.names:
            record.remove_tag(name)
    elif isinstance(action, TagByAction):
        value = record.fields.get(action.tag_by.field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            for tag, (low, high) in action.tag_by.ranges.items():
                if low <= value <= high:
                    add_tag(turn, tag, reason)
    elif isinstance(action, SetAction):
        for name, raw in action.set.items():
            value = turn.render(raw) if isinstance(raw, str) else raw
            try:
                set_field(turn, name, value)
            except InvalidValue as exc:
                log.warning("%s: set %s=%r skipped: %s", reason, name, value, exc)
    elif isinstance(action, IncrementAction):
        for name, raw in action.increment.items():
            try:
                delta = float(turn.render(raw)) if isinstance(raw, str) else raw
                current = record.fields.get(name) or 0
                set_field(turn, name, current + delta)
            except (InvalidValue, ValueError) as exc:
                log.warning("%s: increment %s by %r skipped: %s", reason, name, raw, exc)
    elif isinstance(action, ClearAction):
        for name in action.names:
            if record.clear_field(name):
                # A cleared field is a change too: a reminder anchored on it stops.
                turn.emit(FieldSetTrigger(field_set=name))
    elif isinstance(action, SayAction):
        turn.say(action.say)
    elif isinstance(action, SendAction):
        for message in action.send:
            turn.send(message)
    elif isinstance(action, StartFlowAction):
        # Started once the current step is done, so the friend never gets two questions.
        turn.requested_flow = action.start_flow
    elif isinstance(action, StartSequenceAction):
        turn.sequence_requests.append(("start", action.start_sequence))
    elif isinstance(action, StopSequenceAction):
        turn.sequence_requests.append(("stop", action.stop_sequence))
    elif isinstance(action, RichMenuAction):
        if action.rich_menu in turn.catalogue.rich_menus:
            turn.forced_menu = action.rich_menu  # linked when the turn ends (bot.richmenus)
        else:  # only an old stored flow version can name a menu the catalogue dropped
            log.warning(
                "%s: rich menu %r is not in the catalogue; skipped", reason, action.rich_menu
            )
    else:
        raise TypeError(f"unknown action {type(action).__name__}")
