"""Due sequence steps: each friend's step in the friend's own turn, or in bulk (`bulk_steps`)
for steps with nothing per friend to decide."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from bot.engine.sequences import quiet_end
from bot.line.limits import MAX_MULTICAST_RECIPIENTS
from bot.runtime import Runtime
from bot.services.bulk_steps import run_bulk_steps
from bot.services.turns import finish_turns
from storage.models import EnrollmentStatus, Friend, OutboxMessage, SequenceEnrollment

log = logging.getLogger(__name__)


# Rows handed to the executor and not sent yet, at most (then a planner waits for sends): each
# holds its messages and recipients, and a pass over 100,000 personal steps would otherwise
# queue 100,000 of them while LINE takes 2,000 a second.
MAX_UNSENT = 2000


def run_due_sequence_steps(
    runtime: Runtime, batch: int = 2000, executor: Executor | None = None
) -> int:
    """Run every sequence step that is due; returns how many steps ran (or were skipped by
    their `when`).

    Steps that only say something (nothing to decide or do) run set-based, in passes
    (`bot.services.bulk_steps`); the rest friend by friend (`_run_chunk`). Either way the
    messages are queued and the enrolments moved on in one transaction, then the rows are
    sent — on `executor` when given, so sending overlaps planning. A step is therefore
    planned once, whatever crashes or workers."""
    pending: list[Future[Any]] = []
    pending_lock = threading.Lock()  # the planners of a pass send from their own threads

    def send(rows: list[OutboxMessage]) -> list[Future[Any]]:
        if executor is None:
            return [_done(outcome) for outcome in runtime.sender.send_claimed(rows)]
        futures = [executor.submit(runtime.sender.attempt, row) for row in rows]
        with pending_lock:
            pending[:] = [f for f in pending if not f.done()] + futures
            oldest = pending[: max(0, len(pending) - MAX_UNSENT)]
        wait(oldest)  # its transaction is committed: waiting holds no lock
        return futures

    def settle() -> None:
        wait(pending)
        pending.clear()

    # A friend back from downtime may have several steps due. Each pass takes at most one
    # step per friend (and sequence), and its sends finish before the next pass starts, so
    # a friend's steps reach LINE in order, plain and personal ones alike.
    ran = 0
    while True:
        # One moment for both paths: a plain step that comes due between the bulk pass and
        # the per-friend pass waits for the next round, where it runs in bulk. (With a
        # moment each, a campaign falling due in between had 2,000 of its friends planned
        # one by one: over 2 s of worker CPU before the bulk path took the rest.)
        now = runtime.clock.now()
        defer_quiet_steps(runtime, now)
        progressed = 0
        while passed := run_bulk_steps(runtime, send, now):
            progressed += passed
            settle()
        progressed += _run_personal_pass(runtime, now, batch, send)
        settle()
        ran += progressed
        if not progressed:
            break
    if ran:
        log.info("ran %d sequence step(s)", ran)
    return ran


def defer_quiet_steps(runtime: Runtime, now: datetime) -> int:
    """Steps found due inside their sequence's quiet hours — late, because the worker was down
    or the demo's clock jumped — wait for the end of the window, as a step planned inside it
    does; returns how many. One UPDATE per sequence in its quiet hours, and only when it has
    such steps (a read first: no write transaction on every tick of the night). Under the
    `skip` late policy they are skipped when the window ends, if late beyond the grace."""
    quiet = {
        name: end
        for name, sequence in runtime.catalogue.sequences.items()
        if (end := quiet_end(sequence, now, runtime.settings.tz)) is not None
    }
    if not quiet:
        return 0
    due_inside = (
        select(SequenceEnrollment.sequence)
        .where(
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
            SequenceEnrollment.next_due_at <= now,
            SequenceEnrollment.sequence.in_(list(quiet)),
        )
        .distinct()
    )
    with runtime.db.read() as session:
        names = list(session.scalars(due_inside))
    deferred = 0
    if names:
        with runtime.db.write() as session:
            for name in names:
                result = session.execute(
                    update(SequenceEnrollment)
                    .where(
                        SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                        SequenceEnrollment.next_due_at <= now,
                        SequenceEnrollment.sequence == name,
                    )
                    .values(next_due_at=quiet[name], updated_at=now)
                )
                deferred += result.rowcount  # type: ignore[attr-defined]
    if deferred:
        log.info("%d late sequence step(s) wait for the end of quiet hours", deferred)
    return deferred


def next_step_due_after(runtime: Runtime, now: datetime) -> datetime | None:
    """The earliest moment after `now` at which an active enrolment's step comes due."""
    with runtime.db.read() as session:
        return session.scalar(
            select(func.min(SequenceEnrollment.next_due_at)).where(
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                SequenceEnrollment.next_due_at > now,
            )
        )


def _run_personal_pass(
    runtime: Runtime,
    now: datetime,
    batch: int,
    send: Callable[[list[OutboxMessage]], list[Future[Any]]],
) -> int:
    """Up to `batch` enrolments due at `now`, friend by friend, one step each."""
    with runtime.db.read() as session:
        due = session.execute(
            select(SequenceEnrollment.sequence, SequenceEnrollment.friend_id)
            .where(
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                SequenceEnrollment.next_due_at <= now,
            )
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
                runtime, sequence, friend_ids[start : start + MAX_MULTICAST_RECIPIENTS], send
            )
    return ran


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _run_chunk(
    runtime: Runtime,
    name: str,
    friend_ids: list[int],
    send: Callable[[list[OutboxMessage]], list[Future[Any]]],
) -> int:
    now = runtime.clock.now()
    catalogue = runtime.catalogue
    tag_ids = runtime.tag_ids.fork()
    sequences = runtime.dispatcher.sequences
    ran = 0
    with runtime.db.write() as session:
        statement = select(Friend).where(Friend.id.in_(friend_ids)).order_by(Friend.id)
        if not runtime.db.is_sqlite:
            statement = statement.with_for_update()  # in id order: no deadlock with others
        turns = []
        for friend in session.scalars(statement):
            turn = runtime.new_turn(session, friend, catalogue, now, tag_ids, f"sequence:{name}")
            # One step per friend and pass (see run_due_sequence_steps: order).
            if sequences.run_due_step(turn, name):
                ran += 1
            runtime.dispatcher.finish(turn)
            turns.append(turn)
        rows = finish_turns(runtime, session, turns, now=now, group=True)
    tag_ids.committed()
    if rows:
        send(rows)
    return ran
