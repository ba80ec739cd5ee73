"""Run `stepline worker` processes and kill them with SIGKILL at random moments until the
work is done: the crash half of the exactly-once tests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

STEPLINE = str(Path(sys.executable).parent / "stepline")
WORKER = [STEPLINE, "worker", "--tick", "0.2", "--threads", "2", "--batch", "10"]


def worker_env(database_url: str, emulator_url: str, flows: Path, **extra: str) -> dict[str, str]:
    """The environment of a `stepline worker` process against the emulator, with the short
    lease, backoff and timeout that let a crash test finish in seconds."""
    from tests.support import SECRET, TOKEN

    return dict(
        os.environ,
        DATABASE_URL=database_url,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_BASE_URL=emulator_url,
        STEPLINE_FLOWS=str(flows),
        STEPLINE_OUTBOX_LEASE_SECONDS="2",
        STEPLINE_RETRY_BASE_SECONDS="0.2",
        STEPLINE_RETRY_CAP_SECONDS="1",
        STEPLINE_LINE_TIMEOUT="2",
        STEPLINE_LOG_LEVEL="INFO",  # its "started" line tells the test it is up
        **extra,
    )


def wait_until_started(log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " started " in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the worker did not start: {log.read_text(errors='replace')[-2000:]}")


def kill_workers_until_done(
    unfinished: Callable[[], bool],
    env: dict[str, str],
    logs: Path,
    *,
    at_once: int,
    seed: int,
    timeout: float = 240.0,
) -> int:
    """Keep `at_once` workers running (env needs STEPLINE_LOG_LEVEL=INFO: their "started"
    line says they are up) and kill one at a random moment, again and again, until
    `unfinished()` is false or `timeout` passes; returns how many were killed."""
    rng = random.Random(seed)
    kills, spawned = 0, 0
    running: list[subprocess.Popen[bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while unfinished() and time.monotonic() < deadline:
            while len(running) < at_once:
                log = logs / f"worker{spawned}.log"
                spawned += 1
                with log.open("w") as err:
                    running.append(
                        subprocess.Popen(WORKER, env=env, stdout=subprocess.DEVNULL, stderr=err)
                    )
                wait_until_started(log)
            # Kill at random moments once the worker is up (its start-up takes seconds on a
            # loaded machine): mid-claim, mid-plan, mid-send or mid-record. A lone worker
            # makes no progress while it restarts: give it longer lives.
            time.sleep(rng.uniform(0.4, 2.0) if at_once == 1 else rng.uniform(0.2, 1.2))
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
    finally:
        for proc in running:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return kills
