"""Time-driven work of the worker: timed-out questionnaires and due sequence steps."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.delivery.outbox import MAX_MULTICAST_RECIPIENTS, queue_grouped
from bot.engine.friend_record import FriendRecord
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


def run_due_sequence_steps(runtime: Runtime, batch: int = 2000) -> int:
    """Run every sequence step that is due; returns how many steps ran (or were skipped by
    their `when`).

    Friends due in the same sequence are handled in chunks of up to 500 in one transaction,
    their rows locked: each friend's step runs as in their own turn, then the messages are
    queued — identical ones (nothing personal in the step) as one multicast per chunk,
    personal ones as pushes — and the enrolments move on, all in that transaction; then the
    rows are sent. A step is therefore planned once, whatever crashes or workers."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        due = session.execute(
            select(SequenceEnrollment.sequence, SequenceEnrollment.friend_id)
            .where(SequenceEnrollment.status == "active", SequenceEnrollment.next_due_at <= now)
            .order_by(SequenceEnrollment.next_due_at)
            .limit(batch)
        ).all()
    by_sequence: dict[str, list[int]] = {}
    for sequence, friend_id in due:
        by_sequence.setdefault(sequence, []).append(friend_id)
    ran = 0
    for sequence, friend_ids in by_sequence.items():
        for start in range(0, len(friend_ids), MAX_MULTICAST_RECIPIENTS):
            ran += _run_chunk(
                runtime, sequence, friend_ids[start : start + MAX_MULTICAST_RECIPIENTS]
            )
    if ran:
        log.info("ran %d sequence step(s)", ran)
    return ran


def _run_chunk(runtime: Runtime, name: str, friend_ids: list[int]) -> int:
    now = runtime.clock.now()
    catalogue = runtime.catalogue
    tag_ids = runtime.tag_ids.fork()
    sequences = runtime.dispatcher.sequences
    ran = 0
    with runtime.db.write() as session:
        statement = select(Friend).where(Friend.id.in_(friend_ids)).order_by(Friend.id)
        if not runtime.db.is_sqlite:
            statement = statement.with_for_update()  # in id order: no deadlock with others
        planned: list[tuple[Friend, list[dict[str, Any]]]] = []
        for friend in session.scalars(statement):
            turn = Turn(
                record=FriendRecord(session, friend, catalogue, now, runtime.settings.tz, tag_ids),
                catalogue=catalogue,
                templates=runtime.templates,
                cause=f"sequence:{name}",
            )
            # A friend whose worker was down for days gets the steps now due, once each;
            # each step's messages stay a unit so identical steps can share a multicast.
            first = 0
            while sequences.run_due_step(turn, name):
                ran += 1
                planned.append((friend, turn.outgoing[first:]))
                first = len(turn.outgoing)
            runtime.dispatcher.finish(turn)
            planned.append((friend, turn.outgoing[first:]))
        rows = queue_grouped(
            session,
            planned,
            cause=f"sequence:{name}",
            now=now,
            claim_for=runtime.sender.owner,
            lease=runtime.sender.lease,
        )
    tag_ids.committed()
    if rows:
        runtime.sender.send_claimed(rows)
    return ran
