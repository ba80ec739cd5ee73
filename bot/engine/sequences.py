"""Step sequences (ステップ配信) and reminders: enrolment, planning and running due steps.

A friend's place in a sequence is one `sequence_enrollments` row: the index of the next step
and when it is due. Planning is pure arithmetic in the account's time zone; running a step
happens in the friend's turn (row locked), so the step's outbox row and the move to the next
step are written in one transaction and a step is never planned twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.catalogue.messages import button_action
from bot.catalogue.models import (
    BlockedTrigger,
    FieldSetTrigger,
    SequenceDoc,
    SequenceStep,
    Trigger,
)
from bot.catalogue.templates import contains_template
from bot.engine import conditions
from bot.engine.actions import run_actions
from bot.engine.triggers import trigger_matches
from bot.engine.turn import SkippedSend, Turn
from storage.models import EnrollmentStatus, FriendStatus, SequenceEnrollment

log = logging.getLogger(__name__)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(local: datetime, quiet: tuple[str, str]) -> datetime | None:
    """If `local` falls inside the quiet window, the end of that window; else None."""
    start, end = _clock(quiet[0]), _clock(quiet[1])
    moment = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= moment < end
        end_day = local.date()
    else:  # the window wraps midnight, e.g. 21:00 → 09:00
        inside = moment >= start or moment < end
        end_day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=local.tzinfo)


def quiet_end(sequence: SequenceDoc, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The end of the sequence's quiet hours if `now` is inside them (None: it may send)."""
    if sequence.quiet_hours is None:
        return None
    end = in_quiet_hours(now.astimezone(tz), sequence.quiet_hours)
    return None if end is None else end.astimezone(now.tzinfo)


def step_due(
    sequence: SequenceDoc,
    step: SequenceStep,
    started_at: datetime,
    anchor: datetime | None,
    tz: ZoneInfo,
) -> datetime | None:
    """When `step` is due: enrolment + `after`, or the anchor − `before`; `at` sets the clock
    time on that date (account time); quiet hours defer it to the window's end."""
    if step.before is not None:
        if anchor is None:
            return None
        base = anchor - step.before
    else:
        base = started_at + (step.after or timedelta())
    local = base.astimezone(tz)
    if step.at is not None:
        local = datetime.combine(local.date(), _clock(step.at), tzinfo=tz)
    if sequence.quiet_hours is not None:
        deferred = in_quiet_hours(local, sequence.quiet_hours)
        if deferred is not None:
            local = deferred
    return local.astimezone(started_at.tzinfo)


def say_step(turn: Turn, step: SequenceStep) -> None:
    """Queue the step's text (with its quick replies) and messages in the turn."""
    if step.text is not None:
        quick = None
        if step.quick_replies:
            quick = [button_action(a, turn.render) for a in step.quick_replies]
        turn.say(step.text, quick)
    for message in step.messages:
        turn.send(message)


def is_reminder(sequence: SequenceDoc) -> bool:
    return sequence.anchor is not None


class Sequences:
    """Enrol, stop, re-plan and run steps, always inside a friend's turn.

    `late_policy` decides what happens to a step found due more than `late_grace` ago (the
    worker was down): "send" it late (once), or "skip" it with a record — an outbox row in
    status `skipped` holding the messages it would have sent."""

    def __init__(
        self, late_policy: str = "send", late_grace: timedelta = timedelta(hours=1)
    ) -> None:
        if late_policy not in ("send", "skip"):
            raise ValueError(f"late policy must be send or skip, not {late_policy!r}")
        self.late_policy = late_policy
        self.late_grace = late_grace

    def enrollment(self, turn: Turn, name: str, *, lock: bool = False) -> SequenceEnrollment | None:
        """The friend's enrolment in `name`; `lock` takes its row lock (PostgreSQL), which
        the bulk path (`bot.services.bulk_steps`) respects, so the two never run one step twice."""
        statement = select(SequenceEnrollment).where(
            SequenceEnrollment.friend_id == turn.record.friend.id,
            SequenceEnrollment.sequence == name,
        )
        if lock:
            statement = statement.with_for_update()
        return turn.record.session.scalars(statement).first()

    def enroll(self, turn: Turn, name: str, reason: str) -> bool:
        sequence = turn.catalogue.sequences.get(name)
        if sequence is None:
            log.warning("%s: unknown sequence %s", turn.cause, name)
            return False
        if turn.record.friend.status == FriendStatus.BLOCKED:
            return False
        row = self.enrollment(turn, name)
        if row is not None and (
            row.status == EnrollmentStatus.ACTIVE or sequence.restart == "never"
        ):
            return False
        if row is None:
            row = SequenceEnrollment(friend_id=turn.record.friend.id, sequence=name)
            turn.record.session.add(row)
        row.status, row.started_at, row.updated_at = EnrollmentStatus.ACTIVE, turn.now, turn.now
        row.reason = reason[:200]
        row.anchor_at = self._anchor(turn, sequence)
        if is_reminder(sequence) and row.anchor_at is None:
            row.status, row.next_due_at = EnrollmentStatus.STOPPED, None
            return False
        self._plan_from(turn, sequence, row, 0)
        return True

    def stop(self, turn: Turn, name: str, reason: str) -> bool:
        row = self.enrollment(turn, name)
        if row is None or row.status != EnrollmentStatus.ACTIVE:
            return False
        row.status, row.next_due_at, row.updated_at = EnrollmentStatus.STOPPED, None, turn.now
        row.reason = reason[:200]
        return True

    def on_trigger(self, turn: Turn, fired: Trigger) -> None:
        """Start, stop or re-plan sequences for a trigger the turn fired."""
        for name, sequence in turn.catalogue.sequences.items():
            if any(trigger_matches(stop, fired) for stop in sequence.stop_on):
                self.stop(turn, name, f"stop_on {fired.KIND}")
            elif (
                isinstance(fired, FieldSetTrigger)
                and sequence.anchor == fired.field_set
                and self._replan(turn, sequence)
            ):
                continue
            elif any(trigger_matches(start, fired) for start in sequence.start_on):
                self.enroll(turn, name, f"start_on {fired.KIND}")
        if isinstance(fired, BlockedTrigger):
            for row in turn.record.session.scalars(
                select(SequenceEnrollment).where(
                    SequenceEnrollment.friend_id == turn.record.friend.id,
                    SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                )
            ):
                row.status, row.next_due_at, row.reason = EnrollmentStatus.STOPPED, None, "blocked"

    def run_due_step(self, turn: Turn, name: str) -> bool:
        """Run the enrolment's next step if it is (still) due; True if one ran or was skipped."""
        row = self.enrollment(turn, name, lock=True)
        sequence = turn.catalogue.sequences.get(name)
        if row is None or row.status != EnrollmentStatus.ACTIVE or row.next_due_at is None:
            return False
        if row.next_due_at > turn.now:
            return False
        if sequence is None or row.next_step >= len(sequence.steps):
            row.status, row.next_due_at, row.updated_at = EnrollmentStatus.COMPLETED, None, turn.now
            return False
        step = sequence.steps[row.next_step]
        late = turn.now - row.next_due_at
        skip = self.late_policy == "skip" and late > self.late_grace
        quiet_until = quiet_end(sequence, turn.now, turn.record.tz)
        if quiet_until is not None and not skip:
            # Found due inside the quiet hours (late: the worker was down, or the clock
            # jumped): it waits for the end of the window, as a step planned there does.
            row.next_due_at, row.updated_at = quiet_until, turn.now
            return False
        if step.when is None or conditions.evaluate(step.when, turn.record):
            first = len(turn.outgoing)
            say_step(turn, step)
            if skip:
                self._record_skipped(turn, name, row.next_step, turn.outgoing[first:], late)
                del turn.outgoing[first:]
            else:
                run_actions(turn, step.do, f"{name}/{row.next_step}")
        self._plan_from(turn, sequence, row, row.next_step + 1)
        return True

    def _record_skipped(
        self, turn: Turn, name: str, index: int, messages: list[dict[str, Any]], late: timedelta
    ) -> None:
        log.warning(
            "%s: step %s/%d is late by %s; skipped (policy skip)", turn.cause, name, index, late
        )
        turn.skipped.append(
            SkippedSend(
                messages=messages,
                cause=f"sequence:{name}/{index}",
                due_at=turn.now - late,
                reason=f"late by {late}; skipped by the late-step policy",
            )
        )

    # ------------------------------------------------------------------ planning

    def _anchor(self, turn: Turn, sequence: SequenceDoc) -> datetime | None:
        if sequence.anchor is None:
            return None
        value = turn.record.fields.get(sequence.anchor)
        return value if isinstance(value, datetime) else None

    def _replan(self, turn: Turn, sequence: SequenceDoc) -> bool:
        """The anchor field changed: plan the reminder again (cleared → stopped)."""
        row = self.enrollment(turn, sequence.sequence)
        if row is None or row.status != EnrollmentStatus.ACTIVE:
            return False
        anchor = self._anchor(turn, sequence)
        if anchor is None:
            self.stop(turn, sequence.sequence, "anchor cleared")
            return True
        row.anchor_at, row.updated_at = anchor, turn.now
        self._plan_from(turn, sequence, row, 0)
        return True

    def _plan_from(
        self, turn: Turn, sequence: SequenceDoc, row: SequenceEnrollment, index: int
    ) -> None:
        """Point the enrolment at the first step from `index` that is still to come."""
        row.next_step, row.next_due_at, row.status = plan_from(
            sequence, index, row.started_at, row.anchor_at, turn.record.tz, turn.now
        )
        row.updated_at = turn.now


def plan_from(
    sequence: SequenceDoc,
    index: int,
    started_at: datetime,
    anchor_at: datetime | None,
    tz: ZoneInfo,
    now: datetime,
) -> tuple[int, datetime | None, EnrollmentStatus]:
    """(next step, when it is due, status) for an enrolment moving on to step `index`.

    Reminder steps whose time has already passed when planned are skipped (a reminder
    for tomorrow's appointment set today has no "1 week before" step); steps of a plain
    sequence are never skipped for lateness: after downtime they are sent late, once."""
    while index < len(sequence.steps):
        due = step_due(sequence, sequence.steps[index], started_at, anchor_at, tz)
        if due is None or (is_reminder(sequence) and due < now):
            index += 1
            continue
        return index, due, EnrollmentStatus.ACTIVE
    return index, None, EnrollmentStatus.COMPLETED


def is_bulk_step(step: SequenceStep) -> bool:
    """True if the step only says something: no `when` to decide, no `do` to change anything.
    Such steps can run for many friends at once (`bot.services.bulk_steps`)."""
    return step.when is None and not step.do


def is_personal_step(step: SequenceStep) -> bool:
    """True if the step's messages are templates: each friend's are rendered for them."""
    content = step.model_dump_json(include={"text", "quick_replies", "messages"})
    return contains_template(content)
