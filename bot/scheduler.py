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

from bot.broadcasts import Runner
from bot.delivery.worker import DeliveryWorker
from bot.runtime import Runtime
from bot.timeouts import expire_due_conversations, next_step_due_after, run_due_sequence_steps
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
BACKLOG_WITH_PROGRESS = 1000  # show a progress line when a drain starts with this many due
RERUNS = 3  # steps passes in a row for steps that came due while a pass ran


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
    """Run due steps, then see that the next step's moment is not missed: steps that came due
    while the pass ran get another pass at once, and a step due before the next tick brings
    the tick forward to its moment. So a step runs at its moment rather than up to a tick
    later.

    The passes in a row are few: a step already due but left behind (its friend's row was
    locked, say) must not spin the job; it waits for the regular tick."""
    for _ in range(RERUNS):
        started = runtime.clock.now()
        run_steps(runtime, executor)
        due = next_step_due_after(runtime, started)
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
    try:
        if once:
            sweep(runtime)
            run_steps(runtime, worker.pool)
            run_broadcasts(runtime, worker)
            deliver(worker, console)
            return

        def steps() -> None:
            run_steps_on_time(scheduler, runtime, worker.pool)

        scheduler = build_scheduler(
            [
                ("deliver", lambda: deliver(worker, console), tick_seconds),
                ("steps", steps, tick_seconds),
                ("broadcasts", lambda: run_broadcasts(runtime, worker), tick_seconds),
                ("timeouts", lambda: sweep(runtime), sweep_seconds),
            ]
        )

        def stop(_signum: int, _frame: Any) -> None:
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        log.info(
            "worker %s started (ticks: deliver %.1fs, timeouts %.0fs)",
            runtime.sender.owner[:8],
            tick_seconds,
            sweep_seconds,
        )
        with contextlib.suppress(KeyboardInterrupt):
            scheduler.start()
    finally:
        worker.close()
