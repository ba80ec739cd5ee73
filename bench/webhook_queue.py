"""What the bot did with the benchmark's events, read from its database and the emulator.

The backlog (events stored as `received`, not processed yet), the time it takes to drain
(no event waiting, no reply unsent), when LINE accepted each event's reply, the final tally
that every event was stored once and answered, and the preload of events stored the way the
door stores them but held by no process (what a dead process leaves).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, func, select, update
from webhook_load import EventSource, Sent, percentile

from bot.config import Settings
from bot.line.webhook_events import read_event
from bot.runtime import Runtime
from bot.services.inbox import store_events
from storage.models import OutboxMessage, OutboxStatus, WebhookEvent, WebhookEventStatus

CAUSE = "webhook:"  # an outbox row's cause: webhook:<webhookEventId>
PRELOAD_OWNER = "bench-preload"


@dataclass(frozen=True)
class Drain:
    """The backlog when the load stopped and how long until it was all processed and sent."""

    backlog: int
    seconds: float | None  # None: still not drained at the timeout

    @property
    def kept_up(self) -> bool:
        """Processing kept pace: all done within a second of the last acknowledgement."""
        return self.seconds is not None and self.seconds <= 1.0


@dataclass(frozen=True)
class Answer:
    """The outbox row that answered an event (its cause names the event)."""

    kind: str  # reply, or push when the reply window had passed
    request_id: str | None  # LINE's X-Line-Request-Id of the accepted send


@dataclass
class Replies:
    """Event-to-reply-accepted times: from the load generator's send moment to the moment
    the emulator recorded the send as accepted (both this machine's wall clock)."""

    latencies_ms: list[float] = field(default_factory=list)
    pushed: int = 0  # answered by a push: the reply window had passed
    missing: int = 0  # events with no accepted answer

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


class Queue:
    """The bot's database, read by the benchmark."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url)

    def backlog(self) -> int:
        """Events stored and acknowledged but not processed yet."""
        return self._count(WebhookEvent, WebhookEvent.status == WebhookEventStatus.RECEIVED)

    def unsent(self) -> int:
        """Outbox rows not sent yet (a reply is sent right after its event's commit)."""
        waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
        return self._count(OutboxMessage, OutboxMessage.status.in_(waiting))

    def wait_drained(self, timeout: float, poll: float = 0.1) -> Drain:
        """Poll until no event waits and no reply is unsent; the backlog seen at the start."""
        started = time.perf_counter()
        backlog = self.backlog()
        while time.perf_counter() - started < timeout:
            if self.backlog() == 0 and self.unsent() == 0:
                return Drain(backlog, time.perf_counter() - started)
            time.sleep(poll)
        return Drain(backlog, None)

    def answers(self) -> dict[str, Answer]:
        """Each webhook event's accepted answer, by `webhookEventId` (the rows' cause is
        `webhook:<id>`, or `webhook:<id> (reply N failed)` for a reply sent again as a push)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OutboxMessage.cause, OutboxMessage.kind, OutboxMessage.accepted_request_id
                ).where(OutboxMessage.cause.like(f"{CAUSE}%"))
            ).all()
        answers: dict[str, Answer] = {}
        for cause, kind, request_id in rows:
            event_id = cause[len(CAUSE) :].split(" ", 1)[0]
            if request_id is not None or event_id not in answers:
                answers[event_id] = Answer(kind, request_id)
        return answers

    def tally(self) -> dict[str, int]:
        """Events by status and in all (one row per `webhookEventId`), outbox rows by status."""
        with self.engine.connect() as conn:
            events = conn.execute(
                select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
            ).all()
            outbox = conn.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        out = {f"events {status}": int(n) for status, n in events}
        out["events stored"] = sum(int(n) for _, n in events)
        out.update({f"outbox {status}": int(n) for status, n in outbox})
        return out

    def failures(self, *, events: bool = False) -> dict[str, int]:
        """Why outbox rows (or, with `events`, webhook events) did not end well: error → count."""
        if events:
            why = select(WebhookEvent.error).where(WebhookEvent.status != WebhookEventStatus.DONE)
        else:
            why = select(OutboxMessage.error).where(OutboxMessage.status != OutboxStatus.SENT)
        with self.engine.connect() as conn:
            errors = conn.scalars(why).all()
        return dict(Counter(str(error)[:120] for error in errors).most_common(5))

    def dispose(self) -> None:
        self.engine.dispose()

    def _count(self, model: Any, condition: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(model).where(condition)) or 0)


class ReplyLog:
    """The emulator's record of the sends it accepted: when, by LINE request id."""

    def __init__(self, emulator: str) -> None:
        self.emulator = emulator
        self.cursor = 0
        self.accepted_at: dict[str, float] = {}

    def refresh(self) -> None:
        """Read the sends accepted since the last read."""
        response = requests.get(
            f"{self.emulator}/_emulator/accepted", params={"since": self.cursor}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        self.cursor = int(body["last_seq"])
        for send in body["accepted"]:
            at = datetime.fromisoformat(send["at"]).timestamp()
            self.accepted_at[send["request_id"]] = at

    def counts(self) -> dict[str, int]:
        """Accepted requests by API path since the emulator started."""
        response = requests.get(
            f"{self.emulator}/_emulator/stats", params={"per_user": "false"}, timeout=10
        )
        response.raise_for_status()
        return {k: int(v) for k, v in response.json()["accepted_requests_by_endpoint"].items()}

    def match(self, sent: Iterable[Sent], answers: dict[str, Answer]) -> Replies:
        """Each event's time from sent to its answer accepted (the bot's outbox row names
        the event and the request id LINE gave the send)."""
        self.refresh()
        replies = Replies()
        for event in sent:
            answer = answers.get(event.event_id)
            accepted = self.accepted_at.get(answer.request_id or "") if answer else None
            if answer is None or accepted is None:
                replies.missing += 1
                continue
            replies.pushed += answer.kind == "push"
            replies.latencies_ms.append((accepted - event.at) * 1000)
        return replies


def preload(
    env: dict[str, str], source: EventSource, count: int, per_body: int = 100
) -> list[Sent]:
    """Store `count` events through the door's own write (`store_events`), claimed by a
    process that does not exist (`release` then makes them anyone's, as a lease running out
    would); each event with the moment it was stored."""
    runtime = Runtime(Settings.from_env(env, dotenv=False))
    sent: list[Sent] = []
    try:
        for start in range(0, count, per_body):
            events = [source.event() for _ in range(min(per_body, count - start))]
            store_events(runtime, [read_event(event) for event in events], PRELOAD_OWNER)
            now = time.time()
            sent += [Sent(event["webhookEventId"], now) for event in events]
    finally:
        runtime.close()
    return sent


def release(queue: Queue) -> None:
    """Hand the preloaded events to whichever process sweeps first (owner cleared)."""
    with queue.engine.begin() as conn:
        conn.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.status == WebhookEventStatus.RECEIVED,
                WebhookEvent.owner == PRELOAD_OWNER,
            )
            .values(owner=None, lease_until=None)
        )
