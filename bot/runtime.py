"""The services one stepline process needs, built once from Settings (no module globals)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.catalogue import Catalogue
from bot.catalogue.holder import CatalogueHolder
from bot.catalogue.versions import DatabaseVersions
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.delivery.sender import RetryPolicy, Sender
from bot.engine.dispatch import Dispatcher
from bot.engine.friend_record import FriendRecord, TagIds
from bot.engine.link_tokens import LinkTokens
from bot.engine.sequences import Sequences
from bot.engine.templates import Templates
from bot.engine.turn import Turn
from bot.line.client import LineClient
from bot.line.ratelimit import RateLimiter
from storage.db import Database
from storage.models import Friend

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class ProcessMetrics:
    """Counters and a latency histogram kept by this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sends: Counter[tuple[str, str]] = Counter()
        self.late_replies: Counter[str] = Counter()  # by STEPLINE_LATE_REPLY policy
        self.latency_buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0

    def count_send(self, kind: str, outcome: str) -> None:
        with self._lock:
            self.sends[(kind, outcome)] += 1

    def count_late_reply(self, policy: str) -> None:
        with self._lock:
            self.late_replies[policy] += 1

    def observe_webhook(self, seconds: float) -> None:
        with self._lock:
            self.latency_count += 1
            self.latency_sum += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.latency_buckets[index] += 1


class Runtime:
    """Settings, database, clock, catalogue, LINE client and engine of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        db: Database | None = None,
        line: LineClient | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = db or Database(settings.database_url)
        self.line = line or LineClient(
            settings.line_api_base_url,
            settings.channel_access_token,
            timeout=settings.line_timeout_seconds,
            data_base_url=settings.line_data_api_base_url,
        )
        self.catalogues = CatalogueHolder(
            settings.flows_dir,
            catalogue,
            versions=DatabaseVersions(self.db, self.clock),
            check_seconds=settings.catalogue_check_seconds,
        )
        if catalogue is None:
            # Read early: a process that starts must hold the catalogue it was started with,
            # so a later broken edit cannot leave it with none.
            self.catalogues.reload()
        self.templates = Templates(settings.tz, links=LinkTokens.from_settings(settings))
        self.metrics = ProcessMetrics()
        self.tag_ids = TagIds()
        self.dispatcher = Dispatcher(
            sequences=Sequences(
                late_policy=settings.late_steps,
                late_grace=timedelta(seconds=settings.late_steps_grace_seconds),
            )
        )
        self.sender = Sender(
            self.db,
            self.line,
            self.clock,
            policy=RetryPolicy(
                base_seconds=settings.retry_base_seconds, cap_seconds=settings.retry_cap_seconds
            ),
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            limiter=RateLimiter(settings.rate_limits),
            on_outcome=self.metrics.count_send,
        )

    @property
    def catalogue(self) -> Catalogue:
        return self.catalogues.current

    def new_turn(
        self,
        session: Session,
        friend: Friend,
        catalogue: Catalogue,
        now: datetime,
        tag_ids: TagIds,
        cause: str,
        reply_token: str | None = None,
    ) -> Turn:
        """A turn for one friend in the caller's transaction, on the catalogue it holds (a
        reload meanwhile must not change the rules halfway through a batch)."""
        return Turn(
            record=FriendRecord(session, friend, catalogue, now, self.settings.tz, tag_ids),
            catalogue=catalogue,
            templates=self.templates,
            cause=cause,
            reply_token=reply_token,
        )

    def close(self) -> None:
        self.line.close()
        self.db.dispose()
