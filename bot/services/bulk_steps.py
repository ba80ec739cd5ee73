"""Set-based sequence steps: a step that only says something, run for thousands of friends
per statement.

Most steps of a campaign (ステップ配信) only say something: no `when`, no `do`. Running them
friend by friend through the engine costs ~2 ms each (a query for each friend's enrolment,
an UPDATE, an INSERT), so 100,000 friends due in one minute would take minutes; here one
chunk of up to `CHUNK` enrolments is claimed with one query, moved on with a handful of
UPDATEs (friends whose next step falls at the same moment share one) and queued, all in one
transaction. A step that says the same to everyone is rendered once and queued as multicast
rows; one with templates (`{{ friend.name }}様`) is rendered in each friend's own
turn, exactly as the per-friend path would, and queued as pushes (friends whose messages
come out the same share a multicast). A step with a `when` or actions goes through the
per-friend path instead.

Claiming: PostgreSQL locks the enrolment rows `FOR UPDATE SKIP LOCKED`, so workers never wait
on each other and never take the same rows; the per-friend path locks its enrolment too
(`Sequences.enrollment(lock=True)`), so the two paths exclude each other. SQLite has one
writer at a time. Either way a step is planned once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from bot.catalogue.models import SequenceDoc
from bot.delivery.outbox import queue_multicast
from bot.engine.sequences import is_bulk_step, is_personal_step, plan_from, say_step
from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.turns import finish_turns
from storage.id_lists import id_in
from storage.models import (
    EnrollmentStatus,
    Friend,
    FriendStatus,
    OutboxMessage,
    SequenceEnrollment,
)
from storage.planner_stats import analyze_if_stale

log = logging.getLogger(__name__)

CHUNK = 5000  # enrolments per transaction: ten multicasts, a short write lock
# The first claim of a run is smaller, so its multicasts leave sooner: a chunk of 5,000 takes
# ~50 ms to plan, and under LINE's rate limit (200 multicasts/s) every request the bucket
# could have taken in that time is a request the end waits for.
FIRST_CHUNK = 1000
# A step with templates costs a turn and a push row per friend, so its chunks are smaller:
# the per-chunk costs matter less there, and memory stays at a 1,000 friends' worth per planner.
PERSONAL_CHUNK = 1000
PLANNERS = 2  # chunks planned side by side on PostgreSQL

Enrollments = cast(Table, SequenceEnrollment.__table__)
Friends = cast(Table, Friend.__table__)

SendRows = Callable[[list[OutboxMessage]], "list[Future[Any]]"]
Plan = tuple[int, datetime | None, EnrollmentStatus]  # (next step, due, status): `plan_from`


@dataclass(frozen=True)
class DueGroup:
    sequence: str
    step: int
    count: int
    personal: bool = False  # its messages are templates, rendered for each friend


def due_bulk_groups(runtime: Runtime, now: datetime) -> list[DueGroup]:
    """The (sequence, step) pairs with due enrolments whose step can run in bulk."""
    catalogue = runtime.catalogue
    with runtime.db.read() as session:
        rows = session.execute(
            select(Enrollments.c.sequence, Enrollments.c.next_step, func.count())
            .where(
                Enrollments.c.status == EnrollmentStatus.ACTIVE, Enrollments.c.next_due_at <= now
            )
            .group_by(Enrollments.c.sequence, Enrollments.c.next_step)
        ).all()
    groups = []
    for name, index, count in rows:
        sequence = catalogue.sequences.get(name)
        if (
            sequence is not None
            and index < len(sequence.steps)
            and is_bulk_step(sequence.steps[index])
        ):
            groups.append(DueGroup(name, index, count, is_personal_step(sequence.steps[index])))
    return groups


def run_bulk_steps(runtime: Runtime, send: SendRows, now: datetime | None = None) -> int:
    """One pass over every bulk step due at `now` (the clock's when not given); returns how
    many friends' steps ran.

    Each chunk's rows are handed to `send` as soon as its transaction commits, so sending
    overlaps the planning of the next chunk. A friend appears at most once per (sequence)
    in a pass; the caller waits for the sends before the next pass, so a friend's steps
    reach LINE in order."""
    now = now or runtime.clock.now()
    ran = 0
    groups = due_bulk_groups(runtime, now)
    if sum(group.count for group in groups) > 2 * CHUNK:
        # Stale statistics (friends and enrolments imported in bulk, not yet analysed) made
        # PostgreSQL plan each claim for a few rows: it sorted every due enrolment, once per
        # chunk.
        for table in (Friends, Enrollments):
            analyze_if_stale(runtime.db, table.name)
    for group in groups:
        sequence = runtime.catalogue.sequences[group.sequence]
        starts = _starts(runtime, group, now)
        # Friends enrolled at the same moment share their next step's plan: claim them by
        # that moment and move them on with one statement per chunk. Scattered enrolments
        # (a plan per friend) go the general way.
        by_start: list[Start | None] = list(starts) if len(starts) * 20 <= group.count else [None]
        for start in by_start:
            ran += _run_all_chunks(runtime, sequence, group, now, send, start)
    if ran:
        log.info("ran %d sequence step(s) in bulk", ran)
    return ran


Start = tuple[datetime, datetime | None]  # (started_at, anchor_at) of an enrolment


def _starts(runtime: Runtime, group: DueGroup, now: datetime) -> list[Start]:
    """The distinct enrolment moments among the group's due enrolments (a moment of only
    blocked friends' enrolments costs one empty claim)."""
    statement = _due(
        runtime, group.sequence, group.step, now, following_only=False
    ).with_only_columns(Enrollments.c.started_at, Enrollments.c.anchor_at)
    with runtime.db.read() as session:
        return [(s, a) for s, a in session.execute(statement.distinct().limit(CHUNK)).all()]


def chunk_sizes(group: DueGroup) -> tuple[int, int]:
    """How many enrolments the first claim of a run takes, and each one after."""
    full = min(PERSONAL_CHUNK, CHUNK) if group.personal else CHUNK
    return min(FIRST_CHUNK, full), full


class Keyset:
    """Hands out claims in enrolment id order, one claim at a time, each after the highest id
    the last one took (PostgreSQL's planners; see `_run_all_chunks`)."""

    def __init__(self, first: int, full: int) -> None:
        self.lock = threading.Lock()
        self.after = 0  # every due id up to here was claimed, or locked elsewhere
        self.exhausted = False  # a claim came back less than full: nothing due after `after`
        self.size, self.full = first, full  # how many the next claim asks for, and the rest


def _run_all_chunks(
    runtime: Runtime,
    sequence: SequenceDoc,
    group: DueGroup,
    now: datetime,
    send: SendRows,
    start: Start | None,
) -> int:
    """Chunks until none is full.

    SQLite (one writer at a time) runs them one after the other, each claim reading the due
    index from its start: the enrolments moved on have left it.

    On PostgreSQL `PLANNERS` run side by side, since a chunk mostly waits on the database.
    Their claims take turns (`Keyset`): each claims in enrolment id order after the highest
    id the previous claim took, then moves its chunk on and queues it while the next planner
    claims. So no claim wades through another planner's locked rows (side by side, the second
    claim of a round skipped the first one's 5,000 one by one: 40-60 ms instead of 20), and
    no planner waits for a round to end. Claiming from the start each time instead read the
    enrolments already moved on again: with statistics saying most enrolments are due,
    PostgreSQL reads them through the (friend, sequence) index, which still holds them
    (planning 100,000 took 1.5 s instead of 1.1 s, and the waste grows with the square of
    the count). A row up to the last claimed id that no claim took was locked elsewhere (a
    friend's own turn): it goes in a later pass."""
    if runtime.db.is_sqlite:
        ran, (size, full) = 0, chunk_sizes(group)
        while (done := _run_chunk(runtime, sequence, group, now, send, start, size)) == size:
            ran, size = ran + done, full
        return ran + done
    keyset = Keyset(*chunk_sizes(group))

    def plan_until_exhausted() -> int:
        ran = 0
        while not keyset.exhausted:
            ran += _run_chunk(runtime, sequence, group, now, send, start, keyset)
        return ran

    with ThreadPoolExecutor(PLANNERS, thread_name_prefix="steps") as planners:
        running = [planners.submit(plan_until_exhausted) for _ in range(PLANNERS)]
        return sum(future.result() for future in running)


def _run_chunk(
    runtime: Runtime,
    sequence: SequenceDoc,
    group: DueGroup,
    now: datetime,
    send: SendRows,
    start: Start | None,
    claims: Keyset | int,
) -> int:
    """Claim a chunk of due enrolments (of `claims` many, or in the keyset's turn, order and
    size), move it on and queue it; how many."""
    name, index = sequence.sequence, group.step
    with runtime.db.write() as session:
        if isinstance(claims, int):
            claimed = session.execute(_claim(runtime, name, index, now, start, claims, None)).all()
        else:
            keyset = claims
            with keyset.lock:
                if keyset.exhausted:
                    return 0
                claimed = session.execute(
                    _claim(runtime, name, index, now, start, keyset.size, keyset.after)
                ).all()
                if claimed:
                    keyset.after = claimed[-1].id  # claimed in id order
                keyset.exhausted = len(claimed) < keyset.size
                keyset.size = keyset.full
        if not claimed:
            return 0
        # With templates each friend's turn renders their own messages; without, one
        # friend's turn renders the messages for everyone.
        turns = _render(
            runtime, session, sequence, index, claimed if group.personal else claimed[:1], now
        )
        tz = runtime.settings.tz
        if start is None:
            _move_on(session, sequence, index, claimed, tz, now, sqlite=runtime.db.is_sqlite)
        else:
            plan = plan_from(sequence, index + 1, start[0], start[1], tz, now)
            _set_plan(session, [r.id for r in claimed], plan, now, sqlite=runtime.db.is_sqlite)
        cause, owner, lease = f"sequence:{name}/{index}", runtime.sender.owner, runtime.sender.lease
        if group.personal or len(claimed) == 1:
            # Pushes (a multicast to friends whose messages came out the same), as the
            # per-friend path would send them.
            rows = finish_turns(runtime, session, turns, now=now, group=True, cause=cause)
        else:
            rows = queue_multicast(
                session,
                [row.line_user_id for row in claimed],
                turns[0].outgoing,
                cause=cause,
                now=now,
                claim_for=owner,
                lease=lease,
            )
    if rows:
        send(rows)
    return len(claimed)


def _due(
    runtime: Runtime, name: str, index: int, now: datetime, *, following_only: bool = True
) -> Select[Any]:
    """Due enrolments of (sequence, step) that the bulk path takes; `following_only=False`
    leaves out the friends' status and so the join (enough to find the enrolment moments)."""
    sequences = runtime.dispatcher.sequences
    statement = select(Enrollments.c.id).where(
        Enrollments.c.status == EnrollmentStatus.ACTIVE,
        Enrollments.c.next_due_at <= now,
        Enrollments.c.sequence == name,
        Enrollments.c.next_step == index,
    )
    if following_only:
        # Blocked friends (whose enrolments are normally stopped) go the per-friend way.
        statement = statement.join(Friends, Friends.c.id == Enrollments.c.friend_id).where(
            Friends.c.status == FriendStatus.FOLLOWING
        )
    if sequences.late_policy == "skip":
        # So do steps late beyond the grace under the "skip" policy.
        statement = statement.where(Enrollments.c.next_due_at >= now - sequences.late_grace)
    return statement


def _claim(
    runtime: Runtime,
    name: str,
    index: int,
    now: datetime,
    start: Start | None,
    size: int,
    after: int | None,
) -> Select[Any]:
    """Up to `size` due enrolments; with `after`, in id order above it (see
    `_run_all_chunks`)."""
    columns = [Enrollments.c.id, Enrollments.c.friend_id, Friends.c.line_user_id]
    if start is None:
        columns += [Enrollments.c.started_at, Enrollments.c.anchor_at]
    statement = _due(runtime, name, index, now).with_only_columns(*columns).limit(size)
    if after is not None:
        statement = statement.where(Enrollments.c.id > after).order_by(Enrollments.c.id)
    if start is not None:
        started_at, anchor_at = start
        statement = statement.where(
            Enrollments.c.started_at == started_at,
            Enrollments.c.anchor_at.is_(None)
            if anchor_at is None
            else Enrollments.c.anchor_at == anchor_at,
        )
    if not runtime.db.is_sqlite:
        statement = statement.with_for_update(of=Enrollments, skip_locked=True)
    return statement


def _render(
    runtime: Runtime,
    session: Session,
    sequence: SequenceDoc,
    index: int,
    claimed: Sequence[Row[Any]],
    now: datetime,
) -> list[Turn]:
    """Each claimed friend's turn with the step's messages, rendered exactly as the per-friend
    path renders them (a template reading fields, tags or answers queries
    them for that friend)."""
    ids = [row.friend_id for row in claimed]
    friends = {
        friend.id: friend
        for friend in session.scalars(
            select(Friend).where(id_in(Friend.id, ids, sqlite=runtime.db.is_sqlite))
        )
    }
    catalogue, tag_ids, cause = (
        runtime.catalogue,
        runtime.tag_ids.fork(),
        f"sequence:{sequence.sequence}",
    )
    turns = []
    for friend_id in ids:
        turn = runtime.new_turn(session, friends[friend_id], catalogue, now, tag_ids, cause)
        say_step(turn, sequence.steps[index])
        turns.append(turn)
    return turns


def _move_on(
    session: Session,
    sequence: SequenceDoc,
    index: int,
    claimed: Sequence[Row[Any]],
    tz: ZoneInfo,
    now: datetime,
    *,
    sqlite: bool,
) -> None:
    """Point every claimed enrolment at its next step: one UPDATE per distinct plan (friends
    enrolled at the same moment, or whose next step has an `at` time, share one)."""
    plans: dict[tuple[datetime, datetime | None], Plan] = {}
    by_plan: dict[Plan, list[int]] = {}
    for row in claimed:
        key = (row.started_at, row.anchor_at)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = plan_from(
                sequence, index + 1, row.started_at, row.anchor_at, tz, now
            )
        by_plan.setdefault(plan, []).append(row.id)
    singles: list[dict[str, Any]] = []
    for (step, due, status), ids in by_plan.items():
        if len(ids) == 1:
            singles.append({"eid": ids[0], "b_step": step, "b_due": due, "b_status": status})
            continue
        _set_plan(session, ids, (step, due, status), now, sqlite=sqlite)
    if singles:  # friends enrolled at scattered moments: one executemany
        session.execute(
            update(Enrollments)
            .where(Enrollments.c.id == bindparam("eid"))
            .values(
                next_step=bindparam("b_step"),
                next_due_at=bindparam("b_due"),
                status=bindparam("b_status"),
                updated_at=now,
            ),
            singles,
        )


def _set_plan(
    session: Session,
    ids: list[int],
    plan: Plan,
    now: datetime,
    *,
    sqlite: bool,
) -> None:
    """Move these enrolments to one (next step, due, status): one statement, one parameter."""
    step, due, status = plan
    session.execute(
        update(Enrollments)
        .where(id_in(Enrollments.c.id, ids, sqlite=sqlite))
        .values(next_step=step, next_due_at=due, status=status, updated_at=now)
    )
