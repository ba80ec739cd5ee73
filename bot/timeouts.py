"""Time-driven work of the worker: timed-out questionnaires and due sequence steps."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.turns import FriendNotFound, run_turn
from storage.models import Conversation, Friend, SequenceEnrollment

log = logging.getLogger(__name__)


def expire_due_conversations(runtime: Runtime, batch: int = 200) -> int:
    """Abandon every active conversation whose expiry has passed; returns how many.

    Each friend is handled in its own transaction with their row locked, exactly as a webhook
    would, so a sweep and a late answer never both act on one conversation."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        due = session.scalars(
            select(Friend.line_user_id)
            .join(Conversation, Conversation.friend_id == Friend.id)
            .where(Conversation.status == "active", Conversation.expires_at <= now)
            .order_by(Conversation.expires_at)
            .limit(batch)
        ).all()

    def expire(turn: Turn) -> int:
        dispatcher = runtime.dispatcher
        before = dispatcher.conversations.active(turn.record.session, turn.record.friend.id)
        dispatcher.current(turn)  # abandons it if it is (still) past its expiry
        if before is None or before.status != "abandoned":
            return 0
        dispatcher.finish(turn)
        return 1

    expired = 0
    for line_user_id in due:
        try:
            expired += run_turn(runtime, line_user_id, f"timeout:{line_user_id}", expire)
        except FriendNotFound:
            continue
    if expired:
        log.info("abandoned %d timed-out questionnaire(s)", expired)
    return expired


def run_due_sequence_steps(runtime: Runtime, batch: int = 500) -> int:
    """Run every sequence step that is due; returns how many steps ran (or were skipped by
    their `when`). Each runs in its friend's turn: the step's messages are queued as pushes
    and the enrolment moves on in the same transaction, then the pushes are sent."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        due = session.execute(
            select(Friend.line_user_id, SequenceEnrollment.sequence)
            .join(SequenceEnrollment, SequenceEnrollment.friend_id == Friend.id)
            .where(SequenceEnrollment.status == "active", SequenceEnrollment.next_due_at <= now)
            .order_by(SequenceEnrollment.next_due_at)
            .limit(batch)
        ).all()
    ran = 0
    for line_user_id, sequence in due:

        def step(turn: Turn, name: str = sequence) -> int:
            sequences = runtime.dispatcher.sequences
            count = 0
            # A friend whose worker was down for days gets the steps now due, once each.
            while sequences.run_due_step(turn, name):
                count += 1
            runtime.dispatcher.finish(turn)
            return count

        try:
            ran += run_turn(runtime, line_user_id, f"sequence:{sequence}", step)
        except FriendNotFound:
            continue
    if ran:
        log.info("ran %d sequence step(s)", ran)
    return ran
