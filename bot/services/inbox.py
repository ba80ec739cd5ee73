"""The webhook inbox: events stored at the door in one write, then processed off the request.

`store_events` is all `/callback` does after the signature: one transaction, insert-or-ignore
on `webhookEventId`, the events already claimed by this process (owner + lease, as the
outbox's rows) so it can process them at once; another process takes them only if this one
dies (the lease runs out). `process_friend` then applies one friend's events one at a time,
in LINE's timestamp order, each in its own transaction: a failure is retried with a backoff
and parked as `failed` after the last attempt, and never touches another event.

Ordering across processes: under the friend's row lock, a process applies a friend's event
only if it is the friend's earliest waiting one; if that one belongs to another live process,
it hands its own events of the friend back (owner cleared) and that process takes them after
its own, in order.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.engine.events import apply_event
from bot.engine.friend_record import lock_friend
from bot.engine.turn import SkippedSend, Turn
from bot.line.client import LineError
from bot.line.webhook_events import InboundEvent
from bot.runtime import Runtime
from bot.services.turns import finish_turns
from storage.models import OutboxMessage, WebhookEvent, WebhookEventStatus

log = logging.getLogger(__name__)

HANDLED_TYPES = ("follow", "unfollow", "message", "postback")
CREATING_TYPES = ("follow", "message", "postback")  # a first message makes a friend too
# The status written into the SQL text, not bound: only then can SQLite's planner (and a
# generic PostgreSQL plan) see that the queue's partial indexes (WHERE status = '…') apply;
# with a bound parameter a friend's next event was a scan of the whole table.
WAITING = WebhookEvent.status == literal_column(f"'{WebhookEventStatus.RECEIVED.value}'")
PARKED = WebhookEvent.status == literal_column(f"'{WebhookEventStatus.FAILED.value}'")
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Stored:
    """What one `/callback` stored: the friends with events for this process to process."""

    received: int
    duplicates: int
    ignored: int
    friends: list[str]


def store_events(runtime: Runtime, events: Sequence[InboundEvent], owner: str) -> Stored:
    """Store a body's events in one transaction; well-formed events of a one-to-one chat
    that stepline acts on wait as `received`, claimed by `owner`; the rest are `ignored`."""
    now = runtime.clock.now()
    lease_until = now + timedelta(seconds=runtime.settings.event_lease_seconds)
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.event_id in rows:
            continue
        waits = event.problem is None and event.user_id is not None
        waits = waits and event.type in HANDLED_TYPES
        rows[event.event_id] = {
            "webhook_event_id": event.event_id,
            "type": event.type,
            "line_user_id": event.user_id,
            "is_redelivery": event.is_redelivery,
            "payload": event.payload,
            "status": WebhookEventStatus.RECEIVED if waits else WebhookEventStatus.IGNORED,
            "error": event.problem or (None if waits else _why_ignored(event)),
            "received_at": now,
            "processed_at": None if waits else now,
            "line_timestamp": event.timestamp_ms,
            "attempts": 1 if waits else 0,
            "due_at": now if waits else None,
            "owner": owner if waits else None,
            "lease_until": lease_until if waits else None,
        }
    if not rows:
        return Stored(0, 0, 0, [])
    # Urgent: LINE waits for this one write; background writers of this process queue after.
    with runtime.db.write(urgent=True) as session:
        inserted = set(_insert_new(session, list(rows.values())))
        retaken = _retake_failed(
            session, [i for i in rows if i not in inserted], owner, now, lease_until
        )
        retaken_ids = {event_id for event_id, _ in retaken}
    waiting = [r for i, r in rows.items() if i in inserted and r["owner"] is not None]
    friends = list(dict.fromkeys([r["line_user_id"] for r in waiting] + [u for _, u in retaken]))
    for event in events:
        if event.problem and event.event_id in inserted:
            log.warning("webhook event %s ignored: %s", event.event_id, event.problem)
    ignored = sum(1 for i in inserted if rows[i]["owner"] is None)
    duplicates = len(rows) - len(inserted) - len(retaken_ids)
    return Stored(len(waiting) + len(retaken_ids), duplicates, ignored, friends)


def _why_ignored(event: InboundEvent) -> str:
    if event.user_id is None:
        return "not from a one-to-one chat with a user"
    return f"stepline does not act on {event.type!r} events"


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[str]:
    """One INSERT … ON CONFLICT DO NOTHING for the whole body; the ids that were new."""
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["webhook_event_id"])
        .returning(table.c.webhook_event_id)
    )
    return list(session.scalars(statement))


def _retake_failed(
    session: Session, event_ids: list[str], owner: str, now: datetime, lease_until: datetime
) -> list[tuple[str, str]]:
    """A redelivery of an event parked as failed is processed again (not a duplicate)."""
    if not event_ids:
        return []
    retaken = session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.webhook_event_id.in_(event_ids),
            PARKED,
            WebhookEvent.line_user_id.is_not(None),
        )
        .values(
            status=WebhookEventStatus.RECEIVED,
            is_redelivery=True,
            attempts=1,
            due_at=now,
            owner=owner,
            lease_until=lease_until,
        )
        .returning(WebhookEvent.webhook_event_id, WebhookEvent.line_user_id)
    ).all()
    return [(str(event_id), str(user)) for event_id, user in retaken]


# ---------------------------------------------------------------------- processing


@dataclass
class Progress:
    """What one `process_friend` run did."""

    done: int = 0
    ignored: int = 0
    retrying: int = 0
    failed: int = 0
    handed_back: bool = False


def process_friend(
    runtime: Runtime,
    line_user_id: str,
    owner: str,
    send: Callable[[list[OutboxMessage]], object] | None = None,
) -> Progress:
    """Apply the friend's waiting events, earliest first, until none is left for `owner`;
    each event's messages go to `send` after its commit (default: sent here and now; the
    event pool sends them from its own threads, in the friend's order)."""
    send = send or runtime.sender.send_claimed
    progress = Progress()
    profiles: dict[int, str | None] = {}  # a follow's display name, fetched outside the lock
    while True:
        try:
            step = _apply_next(runtime, line_user_id, owner, profiles)
        except _EventFailed as failed:
            log.error("webhook event %s failed", failed.webhook_event_id, exc_info=failed.cause)
            outcome = _record_failure(runtime, failed.row_id, failed.cause)
            setattr(progress, outcome, getattr(progress, outcome) + 1)
            continue
        if step.outcome == "profile":
            assert step.event is not None
            profiles[step.event.id] = _profile_name(runtime, step.event)
            continue
        if step.outcome == "handed back":
            progress.handed_back = True
        elif step.outcome not in ("none", "raced"):
            setattr(progress, step.outcome, getattr(progress, step.outcome) + 1)
        if step.rows:
            send(step.rows)
        if not step.more:
            return progress


@dataclass
class _Step:
    """One pass of `process_friend`: what happened, what to send, whether more waits."""

    outcome: str  # done | ignored | none | profile | handed back | raced
    rows: list[OutboxMessage] = field(default_factory=list)
    more: bool = False
    event: WebhookEvent | None = None


class _EventFailed(Exception):
    """Applying an event raised: its transaction rolled back; the cause is recorded."""

    def __init__(self, event: WebhookEvent, cause: BaseException) -> None:
        super().__init__(event.webhook_event_id)
        self.row_id, self.webhook_event_id, self.cause = event.id, event.webhook_event_id, cause


def _earliest(session: Session, line_user_id: str, now: datetime) -> WebhookEvent | None:
    """The friend's earliest event waiting and due, in LINE's order (the partial index)."""
    return session.scalars(
        select(WebhookEvent)
        .where(WAITING, WebhookEvent.line_user_id == line_user_id, WebhookEvent.due_at <= now)
        .order_by(WebhookEvent.line_timestamp, WebhookEvent.id)
        .limit(1)
    ).first()


def _profile_name(runtime: Runtime, event: WebhookEvent) -> str | None:
    """A new friend's display name, fetched before the transaction (no network under a lock)."""
    if event.line_user_id is None:
        return None
    try:
        profile = runtime.line.get_profile(event.line_user_id)
    except LineError as exc:
        log.warning("profile of %s unavailable: %s", event.line_user_id, exc)
        return None
    return profile.display_name if profile else None


def _apply_next(
    runtime: Runtime, line_user_id: str, owner: str, profiles: dict[int, str | None]
) -> _Step:
    """The friend's earliest waiting event in one transaction, under the friend's lock."""
    now = runtime.clock.now()
    catalogue = runtime.catalogue
    tag_ids = runtime.tag_ids.fork()
    with runtime.db.write() as session:
        # Lock first (the friend's events are then this transaction's alone), create after:
        # only the kinds that make a friend do (an unfollow of a stranger does not).
        friend = lock_friend(session, line_user_id, now, create=False)
        event = _earliest(session, line_user_id, now)
        if event is None:
            return _Step("none")
        if event.owner not in (None, owner) and event.lease_until and event.lease_until > now:
            _hand_back(session, line_user_id, owner)
            return _Step("handed back")
        if event.type == "follow" and event.id not in profiles:
            return _Step("profile", event=event)  # fetched outside, then back here
        if friend is None and event.type in CREATING_TYPES:
            friend = lock_friend(session, line_user_id, now, create=True)
            # A new friend's row was not there to lock while the event was read: another
            # process may have applied it meanwhile. Now locked, look again.
            again = _earliest(session, line_user_id, now)
            if again is None or again.id != event.id:
                return _Step("raced", more=True)
        try:
            status = WebhookEventStatus.IGNORED
            rows: list[OutboxMessage] = []
            if friend is not None:
                late = _late(runtime, event, now)
                turn = runtime.new_turn(
                    session,
                    friend,
                    catalogue,
                    now,
                    tag_ids,
                    f"webhook:{event.webhook_event_id}",
                    reply_token=None if late else event.payload.get("replyToken") or None,
                )
                status = apply_event(
                    runtime.dispatcher, turn, event.payload, profile_name=profiles.get(event.id)
                )
                if late and turn.outgoing:
                    _late_reply(runtime, turn, now)
                rows = finish_turns(runtime, session, [turn], now=now)
            event.status = status
            event.processed_at = now
            event.owner = event.lease_until = event.due_at = None
            if status == WebhookEventStatus.IGNORED and event.error is None:
                event.error = "nothing to do for this event"
            session.flush()
            more = _earliest(session, line_user_id, now) is not None
        except Exception as exc:
            raise _EventFailed(event, exc) from exc
    tag_ids.committed()
    return _Step("done" if status == WebhookEventStatus.DONE else "ignored", rows, more)


def _late(runtime: Runtime, event: WebhookEvent, now: datetime) -> bool:
    """Whether the event's reply token is past the window LINE allows (counted from LINE's
    timestamp, or from when it was stored)."""
    if event.type == "unfollow":
        return False
    happened = event.received_at
    if event.line_timestamp is not None:
        happened = min(happened, datetime.fromtimestamp(event.line_timestamp / 1000, UTC))
    return now - happened > timedelta(seconds=runtime.settings.reply_window_seconds)


def _late_reply(runtime: Runtime, turn: Turn, now: datetime) -> None:
    """The answer to an event past the reply window: pushed (paid) or dropped, by policy."""
    policy = runtime.settings.late_reply
    runtime.metrics.count_late_reply(policy)
    if policy == "drop":
        turn.skipped.append(
            SkippedSend(
                messages=list(turn.outgoing),
                cause=turn.cause,
                due_at=now,
                reason="the reply window had passed (STEPLINE_LATE_REPLY=drop)",
            )
        )
        turn.outgoing.clear()


def _hand_back(session: Session, line_user_id: str, owner: str) -> None:
    """Give this friend's waiting events back: the process holding the earliest one takes
    them after it, in order."""
    session.execute(
        update(WebhookEvent)
        .where(
            WAITING,
            WebhookEvent.line_user_id == line_user_id,
            WebhookEvent.owner == owner,
        )
        .values(owner=None, lease_until=None)
    )


def _record_failure(runtime: Runtime, row_id: int, exc: BaseException) -> str:
    """After a failed attempt: due again after a backoff, or parked as `failed` after the
    last attempt. Its own transaction: the failed one rolled back."""
    now = runtime.clock.now()
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
    with runtime.db.write() as session:
        event = session.get(WebhookEvent, row_id)
        if event is None or event.status != WebhookEventStatus.RECEIVED:
            return "retrying"
        event.error = detail
        event.owner = event.lease_until = None
        if event.attempts >= runtime.settings.event_attempts:
            event.status, event.due_at, event.processed_at = WebhookEventStatus.FAILED, None, now
            log.error(
                "webhook event %s failed %d times; parked (stepline events retry %s): %s",
                event.webhook_event_id,
                event.attempts,
                event.id,
                detail,
            )
            return "failed"
        event.due_at = now + backoff(event.attempts)
        return "retrying"


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


# ---------------------------------------------------------------------- sweeping


def claim_waiting(runtime: Runtime, owner: str, limit: int = 500) -> list[str]:
    """Claim due events nobody holds (a process died after its 200, a retry came due):
    the friends to process. PostgreSQL: `SKIP LOCKED`, so sweepers never wait on each other."""
    now = runtime.clock.now()
    lease_until = now + timedelta(seconds=runtime.settings.event_lease_seconds)
    with runtime.db.write() as session:
        # An event whose attempts ran out without a recorded failure took its process down
        # with it (killed mid-way, again and again): park it rather than crash the next one.
        session.execute(
            update(WebhookEvent)
            .where(
                WAITING,
                WebhookEvent.due_at <= now,
                WebhookEvent.lease_until < now,
                WebhookEvent.attempts >= runtime.settings.event_attempts,
            )
            .values(
                status=WebhookEventStatus.FAILED,
                owner=None,
                lease_until=None,
                due_at=None,
                processed_at=now,
                error=func.coalesce(WebhookEvent.error, "")
                + " (parked: its process stopped during every attempt)",
            )
        )
        due = (
            select(WebhookEvent.id, WebhookEvent.line_user_id)
            .where(
                WAITING,
                WebhookEvent.due_at <= now,
                or_(WebhookEvent.owner.is_(None), WebhookEvent.lease_until < now),
            )
            .order_by(WebhookEvent.due_at)
            .limit(limit)
        )
        if not runtime.db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        claimed = session.execute(due).all()
        if not claimed:
            return []
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_([row_id for row_id, _ in claimed]))
            .values(owner=owner, lease_until=lease_until, attempts=WebhookEvent.attempts + 1)
        )
    return list(dict.fromkeys(str(user) for _, user in claimed))


# ---------------------------------------------------------------------- operators


def failed_events(runtime: Runtime, limit: int = 100) -> list[WebhookEvent]:
    """Events parked as failed, oldest first."""
    with runtime.db.read() as session:
        return list(
            session.scalars(
                select(WebhookEvent).where(PARKED).order_by(WebhookEvent.id).limit(limit)
            )
        )


def retry_failed(runtime: Runtime, ids: Sequence[int] | None) -> int:
    """Put failed events back in the queue (all of them when `ids` is None): due now, with
    a fresh set of attempts; any serve or worker process takes them."""
    now = runtime.clock.now()
    condition = PARKED
    if ids is not None:
        condition = and_(condition, WebhookEvent.id.in_(list(ids)))
    with runtime.db.write() as session:
        result = session.execute(
            update(WebhookEvent)
            .where(condition)
            .values(
                status=WebhookEventStatus.RECEIVED,
                attempts=0,
                due_at=now,
                owner=None,
                lease_until=None,
                processed_at=None,
            )
            .returning(WebhookEvent.id)
        )
        return len(result.all())


def queue_figures(runtime: Runtime) -> dict[str, float]:
    """Waiting and failed events, and how long the oldest due one has waited (partial
    indexes: cheap however long the table)."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        waiting, oldest = session.execute(
            select(func.count(), func.min(WebhookEvent.due_at)).where(
                WAITING, WebhookEvent.due_at <= now
            )
        ).one()
        failed = session.scalar(select(func.count()).where(PARKED))
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return {"waiting": float(waiting or 0), "failed": float(failed or 0), "lag_seconds": lag}
