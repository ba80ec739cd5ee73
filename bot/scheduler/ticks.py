"""`stepline worker`: a few fixed APScheduler tick jobs over the database's due rows.

APScheduler holds only these ticks, never a job per message: the database is the truth for
what is due (indexed `due_at`), so a restart catches up, a late row is simply due, and a
second worker is harmless. It never runs inside the web processes.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from bot.delivery.worker import DeliveryWorker
from bot.runtime import Runtime
from bot.services.broadcasts import Runner, next_broadcast_due_after
from bot.services.due_steps import next_step_due_after, run_due_sequence_steps
from bot.services.event_pool import EventPool
from bot.services.timeouts import expire_due_conversations
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
BACKLOG_WITH_PROGRESS = 1000  # show a progress line when a drain starts with this many due
RERUNS = 3  # runs in a row of a tick job for work that came due while it ran


def deliver(worker: DeliveryWorker, console: Console | None = None) -> None:
    """Send everything due now; a progress line when the backlog is large."""
    due = worker.due_count()
    if due == 0:
        return
    if console is None or due < BACKLOG_WITH_PROGRESS:
        outcomes = worker.drain()
    else:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("sending the backlog", total=due)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            outcomes = worker.drain(update)
    if outcomes:
        log.info("delivery: %s", dict(outcomes))


def sweep(runtime: Runtime) -> None:
    expire_due_conversations(runtime)


def run_broadcasts(runtime: Runtime, worker: DeliveryWorker) -> None:
    """Start due broadcasts and queue them batch by batch (sent as each batch commits)."""

    def send(rows: list[OutboxMessage]) -> list[Future[Any]]:
        return [worker.pool.submit(runtime.sender.attempt, row) for row in rows]

    Runner(runtime, send).run_due()


def run_steps(runtime: Runtime, executor: Executor | None = None) -> None:
    """Plan due sequence steps into the outbox (they are sent at once, or by `deliver`)."""
    run_due_sequence_steps(runtime, executor=executor)


def run_steps_on_time(
    scheduler: BaseScheduler, runtime: Runtime, executor: Executor, job_id: str = "steps"
) -> None:
    """Run due steps, and wake again at the next step's moment (see `run_on_time`)."""
    run_on_time(
        scheduler,
        runtime,
        job_id,
        lambda: run_steps(runtime, executor),
        lambda after: next_step_due_after(runtime, after),
    )


def run_broadcasts_on_time(
    scheduler: BaseScheduler, runtime: Runtime, worker: DeliveryWorker, job_id: str = "broadcasts"
) -> None:
    """Start due broadcasts, and wake again at the next one's `send_at` (see `run_on_time`)."""
    run_on_time(
        scheduler,
        runtime,
        job_id,
        lambda: run_broadcasts(runtime, worker),
        lambda after: next_broadcast_due_after(runtime, after),
    )


def run_on_time(
    scheduler: BaseScheduler,
    runtime: Runtime,
    job_id: str,
    run: Callable[[], object],
    next_due: Callable[[datetime], datetime | None],
) -> None:
    """Run a tick job's work, then see that the next due moment is not missed: work that
    came due while it ran gets another run at once, and work due before the next tick brings
    the tick forward to its moment. So a step or a broadcast starts at its moment rather
    than up to a tick later.

    The runs in a row are few: work already due but left behind (a friend's row was locked,
    say) must not spin the job; it waits for the regular tick."""
    for _ in range(RERUNS):
        started = runtime.clock.now()
        run()
        due = next_due(started)
        if due is None:
            return
        ahead = due - runtime.clock.now()
        if ahead > timedelta(0):
            # The scheduler keeps real time; the runtime's clock may be offset (the demo's
            # time machine), so wake after the same interval rather than at the same reading.
            _bring_forward(scheduler, job_id, datetime.now(UTC) + ahead)
            return


def _bring_forward(scheduler: BaseScheduler, job_id: str, wake: datetime) -> None:
    job = scheduler.get_job(job_id)
    if job is not None and job.next_run_time is not None and wake < job.next_run_time:
        job.modify(next_run_time=wake)


def build_scheduler(
    jobs: list[tuple[str, Callable[[], Any], float]],
) -> BlockingScheduler:
    """One interval job per tick, each first run as the worker starts (a restart catches up
    at once rather than a tick later)."""
    scheduler = BlockingScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    start = datetime.now(UTC)
    for name, function, seconds in jobs:
        scheduler.add_job(
            function, "interval", seconds=seconds, id=name, name=name, next_run_time=start
        )
    return scheduler


def run_worker(
    runtime: Runtime,
    *,
    once: bool = False,
    batch: int = 200,
    threads: int = 8,
    tick_seconds: float = 1.0,
    sweep_seconds: float = 15.0,
    console: Console | None = None,
) -> None:
    worker = DeliveryWorker(runtime.db, runtime.sender, batch=batch, threads=threads)
    # Webhook events a `serve` process stored but could not finish (it died after its 200),
    # and retries that came due.
    events = EventPool(runtime)
    try:
        if once:
            events.sweep()
            events.wait_idle(timeout=600)
            sweep(runtime)
            run_steps(runtime, worker.pool)
            run_broadcasts(runtime, worker)
            deliver(worker, console)
            return

        # The worker runs the newest catalogue version, as every web process does: each
        # tick that reads the catalogue first looks (at most every check_seconds).
        catalogues = runtime.catalogues
        catalogues.join("worker")

        def steps() -> None:
            catalogues.follow()
            run_steps_on_time(scheduler, runtime, worker.pool)

        def broadcasts() -> None:
            catalogues.follow()
            run_broadcasts_on_time(scheduler, runtime, worker)

        def timeouts() -> None:
            catalogues.follow()
            sweep(runtime)

        scheduler = build_scheduler(
            [
                ("deliver", lambda: deliver(worker, console), tick_seconds),
                ("events", events.sweep, tick_seconds),
                ("steps", steps, tick_seconds),
                ("broadcasts", broadcasts, tick_seconds),
                ("timeouts", timeouts, sweep_seconds),
            ]
        )

        def stop(_signum: int, _frame: Any) -> None:
            scheduler.shutdown(wait=False)

        def reload(_signum: int, _frame: Any) -> None:
            catalogues.reload_soon("via SIGHUP")

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, reload)
        log.info(
            "worker %s started (ticks: deliver %.1fs, timeouts %.0fs)",
            runtime.sender.owner[:8],
            tick_seconds,
            sweep_seconds,
        )
        with contextlib.suppress(KeyboardInterrupt):
            scheduler.start()
    finally:
        events.close()
        worker.close()
