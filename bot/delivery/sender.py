"""Sending outbox rows to LINE and recording the outcome.

The web process sends a turn's rows right after its transaction commits (replies must go
within a minute); rows that fail with a retryable error stay pending for the worker.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.clock import Clock
from bot.delivery.line_client import (
    LineClient,
    LineError,
    LineRejected,
    LineRetryableError,
    SendResult,
)
from bot.delivery.outbox import LEASE
from storage.db import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    status: str  # sent | failed | pending
    detail: str = ""


class Sender:
    def __init__(self, db: Database, line: LineClient, clock: Clock) -> None:
        self.db = db
        self.line = line
        self.clock = clock
        self.owner = uuid.uuid4().hex

    def send_ids(self, ids: list[int]) -> list[Outcome]:
        return [self.send_one(i) for i in ids]

    def send_claimed(self, rows: list[OutboxMessage]) -> list[Outcome]:
        """Send rows this sender already owns (queued with `claim_for=self.owner`)."""
        return [self._attempt(row, self.clock.now()) for row in rows]

    def send_one(self, outbox_id: int) -> Outcome:
        now = self.clock.now()
        row = self._claim(outbox_id, now)
        if row is None:
            return Outcome(outbox_id, "skipped", "not pending or claimed by another sender")
        return self._attempt(row, now)

    def _attempt(self, row: OutboxMessage, now: datetime) -> Outcome:
        try:
            result = self._deliver(row)
        except LineRetryableError as exc:
            self._finish(row, "pending", now, error=str(exc))
            log.warning("outbox %s: %s; left for retry", row.id, exc)
            return Outcome(row.id, "pending", str(exc))
        except (LineRejected, LineError) as exc:
            self._finish(row, "failed", now, error=_describe(exc))
            log.error("outbox %s failed: %s", row.id, _describe(exc))
            return Outcome(row.id, "failed", _describe(exc))
        except Exception as exc:  # a bug must not strand the row in "sending" or fail the event
            log.exception("outbox %s could not be sent", row.id)
            self._finish(row, "failed", now, error=f"{type(exc).__name__}: {exc}")
            return Outcome(row.id, "failed", str(exc))
        self._finish(
            row,
            "sent",
            now,
            accepted=result.accepted_request_id or result.request_id,
        )
        return Outcome(row.id, "sent")

    def _deliver(self, row: OutboxMessage) -> SendResult:
        if row.kind == "reply":
            assert row.reply_token
            return self.line.reply(row.reply_token, row.messages)
        if row.kind == "push":
            assert row.retry_key
            return self.line.push(row.recipients[0], row.messages, row.retry_key)
        if row.kind == "multicast":
            assert row.retry_key
            return self.line.multicast(list(row.recipients), row.messages, row.retry_key)
        raise ValueError(f"unknown outbox kind {row.kind}")

    def _claim(self, outbox_id: int, now: datetime) -> OutboxMessage | None:
        """Take the row with our owner token and a lease; None if someone else holds it."""
        with self.db.write() as session:
            claimed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.status.in_(("pending", "sending")),
                    (OutboxMessage.lease_until.is_(None)) | (OutboxMessage.lease_until < now),
                )
                .values(
                    status="sending",
                    owner=self.owner,
                    lease_until=now + LEASE,
                    attempts=OutboxMessage.attempts + 1,
                )
            )
            if not getattr(claimed, "rowcount", 0):
                return None
            return session.scalars(select(OutboxMessage).where(OutboxMessage.id == outbox_id)).one()

    def _finish(
        self,
        row: OutboxMessage,
        status: str,
        now: datetime,
        *,
        error: str | None = None,
        accepted: str | None = None,
    ) -> None:
        """Record the outcome only while we still own the row (a presumed-dead sender's
        late write must not overwrite another sender's work)."""
        with self.db.write_core() as connection:
            values: dict[str, object] = {"status": status, "lease_until": None, "error": error}
            if status == "sent":
                values.update(sent_at=self.clock.now(), accepted_request_id=accepted)
            result = connection.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.owner == self.owner)
                .values(**values)
            )
            if not getattr(result, "rowcount", 0):
                log.warning("outbox %s: lost ownership before recording %s", row.id, status)


def _describe(exc: LineError) -> str:
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}".strip(": ") for d in exc.details
    )
    return f"{exc} ({details})" if details else str(exc)
