"""What a friend's action means: follow, block, text, postback, or a change from the API."""

from __future__ import annotations

import logging
from typing import Any

from bot.catalogue.models import (
    BlockedTrigger,
    EventTrigger,
    FieldSetTrigger,
    FlowDoc,
    FollowTrigger,
    KeywordTrigger,
    PostbackTrigger,
    Trigger,
)
from bot.catalogue.richmenu_definition import TapRef
from bot.engine.actions import add_tag, run_actions, set_field
from bot.engine.conditions import evaluate
from bot.engine.conversation import Answer, ChoicePostback, Conversations
from bot.engine.menus import settle_menu
from bot.engine.sequences import Sequences
from bot.engine.taps import on_menu_tap, run_tap, taps_with_data
from bot.engine.triggers import trigger_matches
from bot.engine.turn import MAX_TRIGGER_ROUNDS, Turn
from storage.models import UNKNOWN_LINK, Conversation, OutsideEventStatus

log = logging.getLogger(__name__)


class Dispatcher:
    """Turns one friend's action into conversation moves, tags, fields and messages."""

    def __init__(
        self, conversations: Conversations | None = None, sequences: Sequences | None = None
    ) -> None:
        self.conversations = conversations or Conversations()
        self.sequences = sequences or Sequences()

    # ------------------------------------------------------------------ helpers

    def flows_started_by(self, turn: Turn, fired: Trigger) -> list[FlowDoc]:
        return [
            flow
            for flow in turn.catalogue.flows.values()
            if any(trigger_matches(start, fired) for start in flow.start_on)
        ]

    def _start_first(self, turn: Turn, fired: Trigger) -> bool:
        for flow in self.flows_started_by(turn, fired):
            if self.conversations.start(turn, flow.flow):
                return True
        return False

    def current(self, turn: Turn) -> Conversation | None:
        """The friend's active conversation, after abandoning it if its timeout has passed."""
        conv = self.conversations.active(turn.record.session, turn.record.friend.id)
        if conv is not None and conv.expires_at is not None and conv.expires_at <= turn.now:
            self.conversations.expire(turn, conv)
            return None
        return conv

    def finish(self, turn: Turn) -> None:
        """Run what the turn's changes set off: flows started by triggers or `start_flow`;
        then settle which rich menu the friend should see."""
        for _ in range(MAX_TRIGGER_ROUNDS):
            fired, turn.triggers = turn.triggers, []
            requested, turn.requested_flow = turn.requested_flow, None
            sequence_requests, turn.sequence_requests = turn.sequence_requests, []
            if requested is not None:
                self.conversations.start(turn, requested)
            for operation, name in sequence_requests:
                if operation == "start":
                    self.sequences.enroll(turn, name, turn.cause)
                else:
                    self.sequences.stop(turn, name, turn.cause)
            for trigger in fired:
                self.sequences.on_trigger(turn, trigger)
                flows = self.flows_started_by(turn, trigger)
                # A change (tag, field, completion) never cuts into a questionnaire the
                # friend is answering; only their own action or `start_flow` does.
                if flows and self.current(turn) is None:
                    for flow in flows:
                        if self.conversations.start(turn, flow.flow):
                            break
            if not (turn.triggers or turn.requested_flow or turn.sequence_requests):
                break
        else:
            log.warning(
                "%s: triggers still firing after %d rounds; stopped",
                turn.cause,
                MAX_TRIGGER_ROUNDS,
            )
        settle_menu(turn)

    # ------------------------------------------------------------------ events

    def on_follow(self, turn: Turn, unblocked: bool) -> None:
        turn.emit(FollowTrigger(follow="unblocked" if unblocked else "new"))
        turn.relink_menu = unblocked  # their rich menu is linked again (see on_unfollow)
        self.finish(turn)

    def on_unfollow(self, turn: Turn) -> None:
        # What LINE keeps of a per-user menu while blocked is not documented: mark it
        # unknown, so the friend's menu is linked (or unlinked) again if they come back.
        turn.record.friend.rich_menu_id = UNKNOWN_LINK
        conv = self.conversations.active(turn.record.session, turn.record.friend.id)
        if conv is not None:
            self.conversations.cancel(turn, conv)
        turn.emit(BlockedTrigger(blocked=True))
        self.finish(turn)

    def on_text(self, turn: Turn, text: str) -> None:
        conv = self.current(turn)
        if self._start_first(turn, KeywordTrigger(keyword=text)):
            self.finish(turn)
            return
        keyword = next((k for k in turn.catalogue.keywords if k.matches(text)), None)
        if conv is not None and not (
            keyword is not None and not self.conversations.accepts(turn, conv, Answer(text=text))
        ):
            self.conversations.answer(turn, conv, Answer(text=text))
        elif keyword is not None:
            if keyword.reply:
                turn.say(keyword.reply)
            for message in keyword.messages:
                turn.send(message)
            run_actions(turn, keyword.do, f"keyword:{keyword.match}")
            self.finish(turn)
            if conv is not None:  # a keyword, not an answer: the question comes back after it
                self._ask_again_if_still_waiting(turn, (conv.id, conv.state))
            return
        self.finish(turn)

    def on_postback(self, turn: Turn, data: str, params: dict[str, Any] | None) -> None:
        """A postback: a rich-menu area, a raw `postback` a flow starts on, or an answer.

        The rule for what is not an answer while a question waits (a rich-menu tab switched, a
        menu area tapped, a button of an earlier question; a keyword typed, `on_text`): LINE
        has hidden the question's quick replies, so once it has done what it does, the question
        is asked again, in the same free reply. A friend is never left with nothing to tap."""
        waiting = self.current(turn)
        asked = (waiting.id, waiting.state) if waiting is not None else None
        answered = False
        if TapRef.parse(data) is not None:
            on_menu_tap(turn, data, params)  # a rich menu area: never an answer to a question
        else:
            menu_taps = taps_with_data(turn.catalogue, data)
            for area in menu_taps:
                run_tap(turn, area, params)  # its flow requests apply in `finish`, below
            answered = waiting is not None and self.conversations.answer(
                turn, waiting, Answer(postback=data, params=params)
            )
            if not answered:
                if ChoicePostback.parse(data) is not None:
                    # A button of an earlier question: the friend has moved on.
                    log.info("%s: stale choice %s ignored", turn.cause, data)
                elif (
                    # Empty data starts nothing (a trigger names a postback); not an error.
                    not (data and self._start_first(turn, PostbackTrigger(postback=data)))
                    and not menu_taps
                ):
                    log.info("%s: postback %r is not ours; ignored", turn.cause, data[:80])
        self.finish(turn)
        if asked is not None and not answered:
            self._ask_again_if_still_waiting(turn, asked)

    def _ask_again_if_still_waiting(self, turn: Turn, asked: tuple[int, str]) -> None:
        """Ask the question again if the same conversation still waits on the same step
        (nothing in the turn started another flow or moved this one on)."""
        conv = self.conversations.active(turn.record.session, turn.record.friend.id)
        if conv is not None and (conv.id, conv.state) == asked:
            self.conversations.ask_again(turn, conv)

    def on_outside_event(self, turn: Turn, name: str) -> OutsideEventStatus:
        """An event reported by an outside system; `turn.event_values` holds its properties.

        Runs the catalogue's `event:` document (when its `when` holds: "done", else
        "skipped"), then fires `{event: NAME}` so flows that start on it start (only when
        the friend is not mid-questionnaire, as for any change)."""
        status = OutsideEventStatus.DONE
        doc = turn.catalogue.events.get(name)
        if doc is not None:
            if doc.when is None or evaluate(doc.when, turn.record):
                run_actions(turn, doc.do, f"event:{name}")
            else:
                status = OutsideEventStatus.SKIPPED
        turn.emit(EventTrigger(event=name))
        self.finish(turn)
        return status

    def apply_changes(
        self,
        turn: Turn,
        add_tags: list[str],
        remove_tags: list[str],
        fields: dict[str, Any],
    ) -> None:
        """A change from the admin API, with the same triggers as when a flow makes it."""
        for name in add_tags:
            add_tag(turn, name, turn.cause)
        for name in remove_tags:
            turn.record.remove_tag(name)
        for name, value in fields.items():
            if value is None:
                if turn.record.clear_field(name):
                    turn.emit(FieldSetTrigger(field_set=name))
            else:
                set_field(turn, name, value)
        self.finish(turn)
