"""The figures of `GET /metrics`, in Prometheus text format.

Outbox and webhook figures come from the database, so every process reports the same truth;
latency and send counters are this process's own (label `pid`, kept in
`bot.runtime.ProcessMetrics`), as with any multi-process Prometheus target.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import func, select

from bot.runtime import LATENCY_BUCKETS, ProcessMetrics, Runtime
from bot.services.inbox import queue_figures
from storage.models import (
    Broadcast,
    BroadcastStatus,
    EnrollmentStatus,
    OutboxMessage,
    OutboxStatus,
    SequenceEnrollment,
    WebhookEvent,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, value: float, **labels: str) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def render(runtime: Runtime) -> str:
    now = runtime.clock.now()
    lines: list[str] = []
    with runtime.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.kind, OutboxMessage.status
            )
        ).all()
        oldest_due = session.scalar(
            select(func.min(OutboxMessage.due_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.due_at <= now
            )
        )
        # Due work not yet in the outbox: a stopped worker plans nothing, so the outbox's lag
        # alone would read 0 while steps and broadcasts wait. Both are indexed lookups.
        oldest_step = session.scalar(
            select(func.min(SequenceEnrollment.next_due_at)).where(
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                SequenceEnrollment.next_due_at <= now,
            )
        )
        oldest_broadcast = session.scalar(
            select(func.min(Broadcast.send_at)).where(
                Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.send_at <= now
            )
        )
        events = session.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        ).all()
    lines.append("# HELP stepline_outbox_rows Outbox rows by kind and status.")
    lines.append("# TYPE stepline_outbox_rows gauge")
    lines += [_line("stepline_outbox_rows", n, kind=k, status=s) for k, s, n in rows]
    for name, oldest, what in (
        ("stepline_outbox_due_lag_seconds", oldest_due, "the oldest due pending outbox row"),
        ("stepline_steps_due_lag_seconds", oldest_step, "the oldest due sequence step"),
        ("stepline_broadcasts_due_lag_seconds", oldest_broadcast, "the oldest due broadcast"),
    ):
        lines.append(f"# HELP {name} How late {what} is (0: none is late).")
        lines.append(f"# TYPE {name} gauge")
        lines.append(_line(name, _lag(oldest, now)))
    lines.append("# HELP stepline_webhook_events Webhook events stored, by status.")
    lines.append("# TYPE stepline_webhook_events gauge")
    lines += [_line("stepline_webhook_events", n, status=s) for s, n in events]
    queue = queue_figures(runtime)
    for name, value, what in (
        ("stepline_webhook_events_waiting", queue["waiting"], "Events stored, due, not processed"),
        ("stepline_webhook_events_failed", queue["failed"], "Events parked after every attempt"),
        (
            "stepline_webhook_events_lag_seconds",
            queue["lag_seconds"],
            "How long the oldest due event has waited",
        ),
    ):
        lines.append(f"# HELP {name} {what}.")
        lines.append(f"# TYPE {name} gauge")
        lines.append(_line(name, value))
    metrics: ProcessMetrics = runtime.metrics
    pid = str(os.getpid())
    lines.append(
        "# HELP stepline_late_replies_total Answers to events past the reply window, by "
        "STEPLINE_LATE_REPLY policy (this process)."
    )
    lines.append("# TYPE stepline_late_replies_total counter")
    lines += [
        _line("stepline_late_replies_total", n, policy=policy, pid=pid)
        for policy, n in sorted(metrics.late_replies.items())
    ]
    lines.append(
        "# HELP stepline_sends_total Send attempts by endpoint and outcome (this process)."
    )
    lines.append("# TYPE stepline_sends_total counter")
    lines += [
        _line("stepline_sends_total", n, endpoint=k, outcome=o, pid=pid)
        for (k, o), n in sorted(metrics.sends.items())
    ]
    lines.append("# HELP stepline_webhook_seconds Time to answer a webhook (this process).")
    lines.append("# TYPE stepline_webhook_seconds histogram")
    for bound, count in zip(LATENCY_BUCKETS, metrics.latency_buckets, strict=True):
        lines.append(_line("stepline_webhook_seconds_bucket", count, le=f"{bound:g}", pid=pid))
    lines.append(
        _line("stepline_webhook_seconds_bucket", metrics.latency_count, le="+Inf", pid=pid)
    )
    lines.append(_line("stepline_webhook_seconds_sum", metrics.latency_sum, pid=pid))
    lines.append(_line("stepline_webhook_seconds_count", metrics.latency_count, pid=pid))
    return "\n".join(lines) + "\n"


def _lag(oldest: datetime | None, now: datetime) -> float:
    """Seconds since `oldest` (none due: 0)."""
    if oldest is None:
        return 0.0
    due = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - due).total_seconds())
