"""The delivery tick: claim what is due in batches, send it concurrently, record outcomes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from bot.delivery.sender import Sender
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class DeliveryWorker:
    """Drains the outbox; any number of these may run at once (they never share a row)."""

    def __init__(self, db: Database, sender: Sender, *, batch: int = 200, threads: int = 8) -> None:
        self.db = db
        self.sender = sender
        self.batch = batch
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def tick(self) -> TickResult:
        """One batch: claim due rows and send them; what fails comes back when due again."""
        result = TickResult()
        if self.sender.paused(self.sender.clock.now()):
            return result
        rows = self.sender.claim_due(self.batch)
        result.claimed = len(rows)
        for outcome in self.pool.map(self.sender.attempt, rows):
            result.outcomes[outcome.status] += 1
        return result

    def drain(self, progress: Callable[[int, int], None] | None = None) -> Counter[str]:
        """Tick until nothing is due now; `progress(done, due_at_start)` after each batch."""
        total: Counter[str] = Counter()
        due_at_start = self.due_count()
        done = 0
        while True:
            result = self.tick()
            if not result.claimed:
                return total
            total.update(result.outcomes)
            done += result.claimed
            if progress:
                progress(done, max(due_at_start, done))
            # Rows rescheduled for later are not due now; stop when a tick only retried.
            if result.outcomes.get("pending", 0) == result.claimed:
                return total

    def due_count(self) -> int:
        now = self.sender.clock.now()
        with self.db.read() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        or_(
                            (OutboxMessage.status == OutboxStatus.PENDING)
                            & (OutboxMessage.due_at <= now),
                            (OutboxMessage.status == OutboxStatus.SENDING)
                            & (OutboxMessage.lease_until < now),
                        )
                    )
                )
                or 0
            )
