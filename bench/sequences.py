#!/usr/bin/env python3
"""Sequence benchmark: N friends with a step due in the same minute, sent by `stepline worker`.

    .venv/bin/python bench/sequences.py --friends 100000 [--backend sqlite|postgresql]
        [--idle 1000000]

Seeds N friends enrolled in a one-step sequence whose step is due now, starts the LINE
emulator as a process (without rate limits, then with LINE's default limits), runs
`stepline worker --once` and measures: time from due to all accepted, requests the emulator
accepted, and the worker's peak RSS (sampled every 50 ms). The floor is the time LINE's rate
limit alone would need for the same requests. With `--idle M` it also measures the cost of an
idle tick (nothing due) with M enrolled friends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook import (  # noqa: E402
    SECRET,
    TOKEN,
    bench_env,
    database,
    emulator_command,
    free_port,
    process,
)

from storage.migrate import upgrade  # noqa: E402
from storage.models import Friend, OutboxMessage, SequenceEnrollment  # noqa: E402

VENV_BIN = Path(sys.executable).parent
FLOWS = ROOT / "bench" / "flows_sequences"
PUSH_LIMIT = 2000.0  # LINE: 2,000 requests/s for push and multicast


def seed(
    url: str, friends: int, due: datetime, *, sequence: str = "campaign", chunk: int = 20000
) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sequence_enrollments"))
        conn.execute(text("DELETE FROM outbox"))
        conn.execute(text("DELETE FROM friends"))
    made = 0
    while made < friends:
        size = min(chunk, friends - made)
        users = [f"U{uuid.uuid4().hex}" for _ in range(size)]
        with engine.begin() as conn:
            conn.execute(
                insert(Friend),
                [
                    {
                        "line_user_id": u,
                        "display_name": "",
                        "status": "following",
                        "followed_at": now,
                        "created_at": now,
                    }
                    for u in users
                ],
            )
            ids = [
                i for (i,) in conn.execute(select(Friend.id).where(Friend.line_user_id.in_(users)))
            ]
            conn.execute(
                insert(SequenceEnrollment),
                [
                    {
                        "friend_id": i,
                        "sequence": sequence,
                        "status": "active",
                        "started_at": now,
                        "next_step": 0,
                        "next_due_at": due,
                        "updated_at": now,
                        "reason": "bench",
                    }
                    for i in ids
                ],
            )
        made += size
        print(f"  seeded {made}/{friends}", end="\r", flush=True)
    print()
    engine.dispose()


def run_worker(env: dict[str, str]) -> tuple[float, float]:
    """Run `stepline worker --once`; returns (seconds, peak RSS MiB)."""
    started = time.perf_counter()
    # The worker's log goes to a file: a pipe nobody reads fills up and blocks the worker.
    log = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "stepline"), "worker", "--once", "--threads", "8"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(log.read_text(errors="replace")[-2000:])
    return elapsed, peak / 2**20


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )
        done = conn.scalar(
            select(func.count())
            .select_from(SequenceEnrollment)
            .where(SequenceEnrollment.status == "completed")
        )
    engine.dispose()
    return {
        **{f"outbox_{k}": int(v) for k, v in rows.items()},
        "enrolments_completed": int(done or 0),
    }


def one_run(url: str, friends: int, limits: str, sequence: str) -> None:
    emulator_port = free_port()
    env = bench_env(url, FLOWS, emulator_port)
    emulator = emulator_command(emulator_port, "--rate-limits", limits)
    seed(url, friends, datetime.now(UTC) - timedelta(seconds=1), sequence=sequence)
    with process(emulator, env, f"http://127.0.0.1:{emulator_port}/_emulator/health"):
        seconds, rss = run_worker(env)
        stats = requests.get(
            f"http://127.0.0.1:{emulator_port}/_emulator/stats",
            params={"per_user": "false"},
            timeout=60,
        ).json()
    accepted = int(stats.get("accepted_requests_total", 0))
    floor = accepted / PUSH_LIMIT
    print(
        f"{sequence:<9} rate limits {limits:<7}: {friends} friends in {seconds:6.1f} s, "
        f"{accepted} requests accepted, floor {floor:.2f} s, peak worker RSS {rss:.0f} MiB, "
        f"{counts(url)}",
        flush=True,
    )


def idle_tick(url: str, enrolled: int) -> None:
    from bot.config import Settings
    from bot.delivery.worker import DeliveryWorker
    from bot.runtime import Runtime
    from bot.timeouts import expire_due_conversations, run_due_sequence_steps

    seed(url, enrolled, datetime.now(UTC) + timedelta(days=30))
    runtime = Runtime(
        Settings(
            database_url=url,
            channel_secret=SECRET,
            channel_access_token=TOKEN,
            line_api_base_url="http://127.0.0.1:9",
            flows_dir=FLOWS,
        )
    )
    worker = DeliveryWorker(runtime.db, runtime.sender)
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        run_due_sequence_steps(runtime)
        expire_due_conversations(runtime)
        worker.tick()
        samples.append(time.perf_counter() - started)
    worker.close()
    samples.sort()
    print(
        f"idle tick with {enrolled} enrolled: median {samples[len(samples) // 2] * 1000:.2f} ms, "
        f"max {samples[-1] * 1000:.2f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--friends", type=int, default=100_000)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--idle", type=int, default=0, help="enrolled friends for the idle tick")
    parser.add_argument(
        "--sequences",
        default="campaign",
        help="campaign (one identical step: multicast) and/or personal (one push per friend)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, python {platform.python_version()}"
    )
    with database(args.backend) as url:
        upgrade(url)
        for sequence in args.sequences.split(","):
            for limits in ("off", "default"):
                one_run(url, args.friends, limits, sequence)
        if args.idle:
            idle_tick(url, args.idle)


if __name__ == "__main__":
    main()
