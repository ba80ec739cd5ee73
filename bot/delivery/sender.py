"""Sending outbox rows to LINE and recording the outcome.

The web process sends a turn's rows right after its transaction commits (replies must go
within a minute); the worker (`stepline worker`) claims whatever is due or was left behind.
Every state change is written only while this sender still owns the row (owner + lease), so
a sender presumed dead cannot overwrite another's work.

Outcomes: accepted (or 409 for the row's retry key: an earlier attempt was accepted) → `sent`;
5xx, timeouts and 429 → back to `pending`, due again after a backoff with jitter (or LINE's
`Retry-After`), same retry key; other 4xx → `failed` with LINE's message; the monthly-quota 429
pauses all sending for a while and says so.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, aliased

from bot.clock import Clock
from bot.delivery.menu_linking import RichMenuLinker
from bot.delivery.outbox import LEASE
from bot.line.client import (
    LineClient,
    LineError,
    LineRateLimited,
    LineRejected,
    LineRetryableError,
    SendResult,
)
from bot.line.ratelimit import RateLimiter
from storage.db import Database
from storage.models import Friend, FriendStatus, OutboxKind, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

# LINE remembers a retry key for 24 hours; retrying later could send twice.
RETRY_KEY_WINDOW = timedelta(hours=23)
KEYED_KINDS = (OutboxKind.PUSH, OutboxKind.MULTICAST)  # sends that carry an X-Line-Retry-Key
# A reply token is usable for about a minute after the event.
REPLY_TOKEN_LIFE = timedelta(seconds=50)
QUOTA_PAUSE = timedelta(hours=1)
QUOTA_MESSAGE = "monthly limit"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped."""

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    floor_seconds: float = 0.5

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return timedelta(seconds=max(self.floor_seconds, rng.uniform(0, ceiling)))


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    # The row's new status as a plain string (sent | pending | failed | replaced), or lost:
    # another sender owned the row by then.
    status: str
    detail: str = ""


class Sender:
    def __init__(
        self,
        db: Database,
        line: LineClient,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        lease: timedelta = LEASE,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self.db = db
        self.line = line
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.rng = rng or random.Random()
        self.lease = lease
        self.on_outcome = on_outcome
        self.owner = uuid.uuid4().hex
        self.paused_until: datetime | None = None
        self.linker = RichMenuLinker(db, line)

    # ------------------------------------------------------------------ entry points

    def send_claimed(self, rows: list[OutboxMessage]) -> list[Outcome]:
        """Send rows this sender already owns (queued with `claim_for=self.owner`)."""
        return [self.attempt(row) for row in rows]

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def claim_due(self, limit: int) -> list[OutboxMessage]:
        """Claim up to `limit` rows that are due, or whose owner's lease ran out.

        PostgreSQL: `FOR UPDATE SKIP LOCKED`, so any number of workers share the work; SQLite:
        the write transaction (BEGIN IMMEDIATE) already excludes other claimers."""
        now = self.clock.now()
        with self.db.write() as session:
            due = (
                select(OutboxMessage.id)
                .where(
                    or_(
                        (OutboxMessage.status == OutboxStatus.PENDING)
                        & (OutboxMessage.due_at <= now),
                        (OutboxMessage.status == OutboxStatus.SENDING)
                        & (OutboxMessage.lease_until < now),
                    ),
                    _no_link_in_flight(now),
                )
                .order_by(OutboxMessage.due_at)
                .limit(limit)
            )
            if not self.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(session.scalars(due))
            return self._take(session, ids, now)

    def _take(self, session: Session, ids: list[int], now: datetime) -> list[OutboxMessage]:
        """Mark the rows as this sender's (owner + lease) and return them, blocked skipped."""
        if not ids:
            return []
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status=OutboxStatus.SENDING,
                owner=self.owner,
                lease_until=now + self.lease,
                attempts=OutboxMessage.attempts + 1,
            )
        )
        rows = list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
            )
        )
        self._skip_blocked(session, rows)
        return [row for row in rows if row.status == OutboxStatus.SENDING]

    def _skip_blocked(self, session: Session, rows: list[OutboxMessage]) -> None:
        """A friend who blocked the account receives nothing: don't spend a request on it."""
        friend_ids = {
            row.friend_id for row in rows if row.kind != OutboxKind.MULTICAST and row.friend_id
        }
        if not friend_ids:
            return
        blocked = set(
            session.scalars(
                select(Friend.id).where(
                    Friend.id.in_(friend_ids), Friend.status == FriendStatus.BLOCKED
                )
            )
        )
        for row in rows:
            if row.friend_id in blocked and row.kind != OutboxKind.MULTICAST:
                row.status, row.lease_until = OutboxStatus.SKIPPED, None
                row.error = "friend has blocked"

    # ------------------------------------------------------------------ one attempt

    def attempt(self, row: OutboxMessage) -> Outcome:
        outcome = self._attempt(row)
        if self.on_outcome is not None:
            self.on_outcome(row.kind, outcome.status)
        return outcome

    def _attempt(self, row: OutboxMessage) -> Outcome:
        now = self.clock.now()
        if row.kind in KEYED_KINDS and now - row.created_at > RETRY_KEY_WINDOW:
            return self._finish(
                row, OutboxStatus.FAILED, error="gave up: the retry key's 24 h window passed"
            )
        try:
            self.limiter.acquire(row.kind)
            result = self._deliver(row)
        except LineRateLimited as exc:
            if QUOTA_MESSAGE in str(exc).lower():
                self.paused_until = now + QUOTA_PAUSE
                log.error(
                    "LINE says the monthly message quota is used up: sending paused until %s",
                    self.paused_until.isoformat(),
                )
                return self._reschedule(row, now + QUOTA_PAUSE, str(exc))
            wait = self.policy.delay(row.attempts, self.rng)
            if exc.retry_after is not None:
                wait = max(wait, timedelta(seconds=exc.retry_after))
            return self._retry(row, now, exc, wait)
        except LineRetryableError as exc:
            return self._retry(row, now, exc, self.policy.delay(row.attempts, self.rng))
        except LineRejected as exc:
            log.error("outbox %s rejected: %s", row.id, _describe(exc))
            return self._finish(row, OutboxStatus.FAILED, error=_describe(exc))
        except Exception as exc:  # a bug must not strand the row in "sending"
            log.exception("outbox %s could not be sent", row.id)
            return self._finish(row, OutboxStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return self._finish(
            row, OutboxStatus.SENT, accepted=result.accepted_request_id or result.request_id
        )

    def _deliver(self, row: OutboxMessage) -> SendResult:
        if row.kind == OutboxKind.REPLY:
            assert row.reply_token
            return self.line.reply(row.reply_token, row.messages)
        if row.kind == OutboxKind.PUSH:
            assert row.retry_key
            return self.line.push(row.recipients[0], row.messages, row.retry_key)
        if row.kind == OutboxKind.MULTICAST:
            assert row.retry_key
            return self.line.multicast(list(row.recipients), row.messages, row.retry_key)
        if row.kind == OutboxKind.RICHMENU:
            return self.linker.link(list(row.recipients))
        raise ValueError(f"unknown outbox kind {row.kind}")

    def _retry(self, row: OutboxMessage, now: datetime, exc: LineError, wait: timedelta) -> Outcome:
        if row.kind == OutboxKind.REPLY:
            return self._reply_failed(row, now, exc)
        log.warning("outbox %s: %s; retrying in %.1f s", row.id, exc, wait.total_seconds())
        return self._reschedule(row, now + wait, str(exc))

    def _reply_failed(self, row: OutboxMessage, now: datetime, exc: LineError) -> Outcome:
        """A reply cannot be retried safely for long: the token is single-use and short-lived.

        If LINE answered (5xx/429), nothing was delivered: send the messages as a push instead
        (paid, but not lost). If the outcome is unknown (timeout, dropped connection), retry the
        reply while the token lives: a reply that did arrive makes LINE reject the retry's
        token, and the row is then failed rather than sent twice."""
        if exc.status is not None:
            return self._replace_with_push(row, now, str(exc))
        if now - row.created_at < REPLY_TOKEN_LIFE:
            return self._reschedule(row, now + timedelta(seconds=1), str(exc))
        return self._finish(
            row, OutboxStatus.FAILED, error=f"reply outcome unknown and its token expired: {exc}"
        )

    # ------------------------------------------------------------------ recording

    def _finish(
        self,
        row: OutboxMessage,
        status: OutboxStatus,
        *,
        error: str | None = None,
        accepted: str | None = None,
    ) -> Outcome:
        owned = {"row_id": row.id, "row_owner": self.owner}
        if status == OutboxStatus.SENT:
            statement = _RECORD_SENT
            values = {**owned, "at": self.clock.now(), "accepted": accepted}
        else:
            statement, values = _RECORD_END, {**owned, "new_status": status, "new_error": error}
        with self.db.write_core() as connection:
            result = connection.execute(statement, values)
        if not getattr(result, "rowcount", 0):
            log.warning("outbox %s: lost ownership before recording %s", row.id, status)
            return Outcome(row.id, "lost", "another sender owns the row now")
        return Outcome(row.id, status.value, error or "")

    def _reschedule(self, row: OutboxMessage, due_at: datetime, error: str) -> Outcome:
        with self.db.write_core() as connection:
            result = connection.execute(
                _RECORD_RETRY,
                {
                    "row_id": row.id,
                    "row_owner": self.owner,
                    "due": due_at,
                    "new_error": error[:2000],
                },
            )
        if not getattr(result, "rowcount", 0):
            return Outcome(row.id, "lost", "another sender owns the row now")
        return Outcome(row.id, "pending", error)

    def _replace_with_push(self, row: OutboxMessage, now: datetime, error: str) -> Outcome:
        with self.db.write() as session:
            result = session.execute(
                _RECORD_END,
                {
                    "row_id": row.id,
                    "row_owner": self.owner,
                    "new_status": OutboxStatus.REPLACED,
                    "new_error": f"reply failed: {error}"[:2000],
                },
            )
            if not getattr(result, "rowcount", 0):
                return Outcome(row.id, "lost", "another sender owns the row now")
            push = OutboxMessage(
                kind=OutboxKind.PUSH,
                friend_id=row.friend_id,
                recipients=row.recipients,
                reply_token=None,
                messages=row.messages,
                retry_key=str(uuid.uuid4()),
                cause=f"{row.cause} (reply {row.id} failed)"[:200],
                status=OutboxStatus.PENDING,
                attempts=0,
                due_at=now,
                created_at=now,
            )
            session.add(push)
        log.warning("outbox %s: reply failed (%s); sending it as push %s", row.id, error, push.id)
        return Outcome(row.id, "replaced", error)


# The outcome statements, built once: the sender records one per attempt, and building (and
# looking up the cache key of) an UPDATE each time cost as much CPU as running it. Each
# changes the row only while this sender still owns it.
_Outbox = cast(Table, OutboxMessage.__table__)
_OWNED = (_Outbox.c.id == bindparam("row_id")) & (_Outbox.c.owner == bindparam("row_owner"))
_RECORD_SENT = (
    update(_Outbox)
    .where(_OWNED)
    .values(
        status=OutboxStatus.SENT,
        lease_until=None,
        error=None,
        sent_at=bindparam("at"),
        accepted_request_id=bindparam("accepted"),
    )
)
_RECORD_END = (
    update(_Outbox)
    .where(_OWNED)
    .values(status=bindparam("new_status"), lease_until=None, error=bindparam("new_error"))
)
_RECORD_RETRY = (
    update(_Outbox)
    .where(_OWNED)
    .values(
        status=OutboxStatus.PENDING,
        lease_until=None,
        due_at=bindparam("due"),
        error=bindparam("new_error"),
    )
)


def _no_link_in_flight(now: datetime) -> Any:
    """A friend's rich menu link row is not taken while another of theirs, or a bulk link
    row (`stepline richmenu sync`), is being sent: two in flight could reach LINE in the
    wrong order and leave the older menu linked."""
    other = aliased(OutboxMessage)
    in_flight = (
        select(other.id)
        .where(
            other.kind == OutboxKind.RICHMENU,
            or_(other.friend_id == OutboxMessage.friend_id, other.friend_id.is_(None)),
            other.status == OutboxStatus.SENDING,
            other.lease_until >= now,
            other.id != OutboxMessage.id,
        )
        .exists()
    )
    return or_(
        OutboxMessage.kind != OutboxKind.RICHMENU, OutboxMessage.friend_id.is_(None), ~in_flight
    )


def _describe(exc: LineError) -> str:
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}".strip(": ") for d in exc.details
    )
    return f"{exc} ({details})" if details else str(exc)
