#!/usr/bin/env python3
"""Sequence benchmark: N friends with a step due in the same minute, sent by `stepline worker`.

    .venv/bin/python bench/sequences.py --friends 100000 [--backend sqlite|postgresql]
        [--repeat 3] [--idle 1000000]

Seeds N friends enrolled in a one-step sequence (`--sequences campaign`: the same text for
everyone, sent as multicasts; `personal`: a text with the friend's own number, one push each),
starts the LINE emulator as a process (without rate limits, then with LINE's default limits)
and a running `stepline worker`, makes every step due at once with one UPDATE and measures:
the time from due to all accepted (from the rows' own timestamps: the steps' due moment to
the last outbox row's `sent_at`; the end is noticed in the worker's log, then checked once in
the database), the requests the emulator accepted, and the worker's peak RSS (sampled every
50 ms). The floor is the time LINE's rate limits alone would need for the same requests
(multicast 200/s, push 2,000/s, each endpoint on its own); since LINE's token bucket starts
full, only the requests beyond the first second's worth are really held back, and that
stricter floor (none when all requests fit in the first burst) is printed with its ratio too.
With `--idle M` it also measures the cost of an idle tick (nothing due) with M enrolled friends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import create_engine, func, insert, select, text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook import (  # noqa: E402
    SECRET,
    TOKEN,
    bench_env,
    cpu_seconds,
    database,
    emulator_command,
    free_port,
    process,
)

from bot.line.ratelimit import DEFAULT_LIMITS  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Friend, OutboxMessage, SequenceEnrollment  # noqa: E402

VENV_BIN = Path(sys.executable).parent
FLOWS = ROOT / "bench" / "flows_sequences"
LEAD_PER_100K = 5.0  # seconds between making the steps due and their due moment, per 100,000
LIMITS = DEFAULT_LIMITS  # LINE's: push 2,000 requests/s, multicast 200 requests/s


def seed(
    url: str, friends: int, due: datetime, *, sequence: str = "campaign", chunk: int = 20000
) -> list[str]:
    """N friends enrolled in `sequence` with their first step due at `due`; their user ids."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sequence_enrollments"))
        conn.execute(text("DELETE FROM outbox"))
        conn.execute(text("DELETE FROM friends"))
    made = 0
    everyone: list[str] = []
    while made < friends:
        size = min(chunk, friends - made)
        users = [f"U{uuid.uuid4().hex}" for _ in range(size)]
        everyone += users
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
    return everyone


def register(emulator: str, users: list[str], chunk: int = 20000) -> None:
    """Make the seeded friends friends at the emulator too (it refuses pushes to strangers)."""
    for start in range(0, len(users), chunk):
        requests.post(
            f"{emulator}/_emulator/users/bulk",
            json={"user_ids": users[start : start + chunk]},
            timeout=120,
        ).raise_for_status()


def start_worker(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """A running `stepline worker` (as in production), once it says it has started."""
    log = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
    with log.open("wb") as out:
        # The worker's log goes to a file: a pipe nobody reads fills up and blocks the worker.
        proc = subprocess.Popen(
            # As in production: the default tick (1 s) and threads (8). The worker wakes at
            # the steps' due moment whatever the tick, so a shorter tick would only add idle
            # ticks competing for the CPU (it was 0.2 s before the worker woke on time).
            [str(VENV_BIN / "stepline"), "worker"],
            env=dict(env, STEPLINE_LOG_LEVEL="INFO"),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    deadline = time.monotonic() + 120
    while " started " not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text(errors="replace")[-2000:])
        time.sleep(0.05)
    return proc, log


def unfinished(conn: Any) -> bool:
    """Is any enrolment's step still to run, or any outbox row not yet accepted?"""
    step = conn.scalar(
        select(SequenceEnrollment.id).where(SequenceEnrollment.status == "active").limit(1)
    )
    row = conn.scalar(
        select(OutboxMessage.id).where(OutboxMessage.status.in_(("pending", "sending"))).limit(1)
    )
    return step is not None or row is not None


# The worker's line after a pass of steps, and after a deliver tick that sent something (a row
# LINE refused with 429 is sent again by the deliver tick, after the pass's line).
PASS_DONE = re.compile(rb"ran \d+ sequence step\(s\)\n|delivery: \{")
RECHECK_SECONDS = 5.0  # after a pass, ask the database at least this often, whatever the log


def make_due_and_wait(
    url: str, proc: subprocess.Popen[bytes], log: Path
) -> tuple[float, float, datetime]:
    """Make every enrolment due at once (one UPDATE), then wait until every step ran and every
    row was accepted; returns (seconds from due until the end was noticed, peak worker RSS
    MiB, the moment they became due).

    The end is noticed in the worker's log (its line after a pass of steps, written once
    the pass's sends are settled, or after a deliver tick that sent a row LINE refused at
    first), then checked in the database; after the first pass the database is also asked
    every `RECHECK_SECONDS`, so a row sent without a log line cannot leave the wait
    hanging. Asking the database every
    50 ms instead perturbed what is measured: "any enrolment still active?" is a sequential
    scan once most are completed (up to 48 ms a poll; 46 polls took 0.8 s of a 3.2 s run on
    PostgreSQL, its CPU taken from the worker's statements)."""
    engine = create_engine(url)
    watched = psutil.Process(proc.pid)
    peak = watched.memory_info().rss
    with engine.connect() as conn:
        enrolled = int(conn.scalar(select(func.count()).select_from(SequenceEnrollment)) or 0)
    lead = LEAD_PER_100K * max(1.0, enrolled / 100_000)
    # Due in `lead` seconds, all at once; meanwhile the tables are vacuumed and analysed, as
    # autovacuum would have done in the days between the enrolments and their step (the
    # UPDATE leaves a dead version of every enrolment that the claims would wade through,
    # and the friends were seeded a moment ago: the worker would analyse them first).
    due = datetime.now(UTC) + timedelta(seconds=lead)
    with engine.begin() as conn:
        conn.execute(update(SequenceEnrollment).values(next_due_at=due))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        vacuum = "ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"
        for table in ("friends", "sequence_enrollments"):
            conn.execute(text(f"{vacuum} {table}"))
    if (wait := (due - datetime.now(UTC)).total_seconds()) < 0:
        raise RuntimeError(f"vacuuming took {lead - wait:.1f} s, more than the {lead:.0f} s lead")
    with log.open("rb") as lines:
        lines.seek(0, os.SEEK_END)  # only what the worker logs from now on
        time.sleep(wait)
        started = checked = time.perf_counter()
        seen, passed = b"", False
        while True:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            seen += lines.read()
            logged = PASS_DONE.search(seen) is not None
            passed = passed or logged
            if logged or (passed and time.perf_counter() - checked > RECHECK_SECONDS):
                seen, checked = b"", time.perf_counter()
                with engine.connect() as conn:
                    if not unfinished(conn):
                        break
            if proc.poll() is not None:
                raise RuntimeError(log.read_text(errors="replace")[-2000:])
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, peak / 2**20, due


def timeline(url: str, due: datetime) -> dict[str, float]:
    """Seconds from the moment the steps became due to: the tick that found them (the rows'
    `created_at` is the tick's time), the first and the last request accepted."""
    engine = create_engine(url)
    with engine.connect() as conn:
        tick, first, last = conn.execute(
            select(
                func.min(OutboxMessage.created_at),
                func.min(OutboxMessage.sent_at),
                func.max(OutboxMessage.sent_at),
            )
        ).one()
    engine.dispose()
    moments = {"tick": tick, "first accepted": first, "last accepted": last}
    return {k: (v - due).total_seconds() for k, v in moments.items() if v is not None}


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


def loop_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes (best of three): how fast this shared
    machine's CPU is just now, printed with each run, since neighbours change it by 2x."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def one_run(url: str, friends: int, limits: str, sequence: str) -> float:
    """One measured run; prints it and returns its ratio to the floor."""
    speed = loop_ms()
    emulator_port = free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    env = bench_env(url, FLOWS, emulator_port)
    emulator = emulator_command(emulator_port, "--rate-limits", limits)
    with process(emulator, env, f"{emulator_url}/_emulator/health") as emulator_proc:
        users = seed(url, friends, datetime.now(UTC) + timedelta(days=30), sequence=sequence)
        register(emulator_url, users)
        proc, log = start_worker(env)
        try:
            worker_cpu, emulator_cpu = cpu_seconds(proc.pid), cpu_seconds(emulator_proc.pid)
            polled, rss, due = make_due_and_wait(url, proc, log)
            worker_cpu = cpu_seconds(proc.pid) - worker_cpu
            emulator_cpu = cpu_seconds(emulator_proc.pid) - emulator_cpu
        finally:
            proc.terminate()
            proc.wait(30)
        stats = requests.get(
            f"{emulator_url}/_emulator/stats", params={"per_user": "false"}, timeout=60
        ).json()
    by_endpoint = stats.get("accepted_requests_by_endpoint", {})
    multicasts = int(by_endpoint.get("/v2/bot/message/multicast", 0))
    pushes = int(by_endpoint.get("/v2/bot/message/push", 0))
    steps = timeline(url, due)
    seconds = steps["last accepted"]
    # Each endpoint has its own bucket, so they run side by side: the slower one is the floor.
    floor = max(multicasts / LIMITS["multicast"], pushes / LIMITS["push"])
    # LINE's bucket starts full (a second's worth of requests at once), so the requests beyond
    # the first second's worth are all the limit really holds back: a stricter floor, zero
    # when every request fits in the first burst (then the limit never bites).
    held_back = max(
        (multicasts - LIMITS["multicast"]) / LIMITS["multicast"],
        (pushes - LIMITS["push"]) / LIMITS["push"],
        0.0,
    )
    strict = f"{seconds / held_back:.2f}" if held_back else "none: all fit in the first burst"
    print(
        f"{sequence:<9} rate limits {limits:<7}: {friends} friends in {seconds:6.2f} s "
        f"(the end noticed at {polled:.2f} s; "
        f"{multicasts} multicasts, {pushes} pushes accepted; LINE floor {floor:.2f} s, "
        f"ratio {seconds / floor if floor else float('nan'):.2f}; after the first burst "
        f"{held_back:.2f} s, ratio {strict}), "
        f"peak worker RSS {rss:.0f} MiB, CPU worker {worker_cpu:.2f} s / emulator "
        f"{emulator_cpu:.2f} s, {counts(url)}",
        flush=True,
    )
    print(
        "  from due (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
        + f"; CPU check before the run: {speed:.0f} ms",
        flush=True,
    )
    return seconds / floor if floor else float("nan")


def idle_tick(url: str, enrolled: int) -> None:
    from bot.config import Settings
    from bot.delivery.worker import DeliveryWorker
    from bot.runtime import Runtime
    from bot.services.due_steps import next_step_due_after, run_due_sequence_steps
    from bot.services.timeouts import expire_due_conversations

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
        next_step_due_after(runtime, runtime.clock.now())  # when to wake for the next step
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
        "--repeat",
        type=int,
        default=1,
        help="runs of each (sequence, limits); the summary gives the best and the median ratio "
        "(on a shared machine the best is the run least disturbed by neighbours)",
    )
    parser.add_argument(
        "--sequences",
        default="campaign",
        help="campaign (one identical step: multicast) and/or personal (one push per friend)",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, python {platform.python_version()}"
    )
    with database(args.backend) as url:
        upgrade(url)
        for sequence in args.sequences.split(","):
            for limits in ("off", "default"):
                ratios = sorted(
                    one_run(url, args.friends, limits, sequence) for _ in range(args.repeat)
                )
                if args.repeat > 1:
                    print(
                        f"{sequence:<9} rate limits {limits:<7}: ratio best {ratios[0]:.2f}, "
                        f"median {ratios[len(ratios) // 2]:.2f} of {len(ratios)} runs",
                        flush=True,
                    )
        if args.idle:
            idle_tick(url, args.idle)


if __name__ == "__main__":
    main()
