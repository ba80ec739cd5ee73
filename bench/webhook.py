#!/usr/bin/env python3
"""Webhook benchmark: the front door (`stepline serve`) against two bare Flask baselines.

    .venv/bin/python bench/webhook.py [--duration 10] [--rates 150,300] [--latency-ms 200]
        [--backends sqlite,postgresql] [--drain-events 5000] [--quick]

For each database it starts the LINE emulator with a latency on every Messaging API call
(`PUT /_emulator/chaos {"latency_ms": 200}`), the bot as in production (`stepline serve`:
gunicorn, an event pool and a sweeper per worker) and two baselines under the same gunicorn
settings: a bare Flask app that only answers 200, and one that does one INSERT per request
into the same database (`bench/bare_insert_app.py`). Friends are seeded mid-questionnaire;
each event is a signed postback answering the question. The door stores it and answers;
the pool then moves the conversation, swaps a tag and sends the reply to the emulator.

Phases: (a) closed loop, `--concurrency` connections as fast as they go, against each app:
acknowledgements/s, p50, p99, CPU per event per process; for the bot, the backlog of
`received` events when the load stops and the time until it is drained. (b) Open loop at
each of `--rates` events/s against each app: acknowledgement p50/p99; for the bot also
event-to-reply-accepted p50/p99 (from the load generator's planned send moment to the
emulator's record of the accepted reply, one wall clock), whether processing kept up, and CPU
per processed event. (c) PostgreSQL only: `--drain-events` events stored as the door stores
them but held by no process, drained by 1 and then 2 `stepline worker` processes (their
sweep): events/s, the ratio, each process's CPU (emulator latency `--drain-latency-ms`).
Afterwards it checks the work was really done: every event stored once and processed, none
failed, every reply accepted, every baseline insert there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bare_insert_app import bodies, create_table  # noqa: E402
from webhook_cpu import OTHERS, OWN, POSTGRES, CpuMeter, Spent, cpu_seconds  # noqa: E402
from webhook_load import EventSource, Result, closed_loop, open_loop  # noqa: E402
from webhook_queue import (  # noqa: E402
    Drain,
    Queue,
    Replies,
    ReplyLog,
    preload,
    release,
)

from bot.catalogue.loader import load_catalogue  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Conversation, FlowVersion, Friend  # noqa: E402

__all__ = [  # what the other benchmarks import from here
    "SECRET",
    "TOKEN",
    "bench_env",
    "cpu_seconds",
    "database",
    "emulator_command",
    "free_port",
    "process",
]

SEND_THREADS = 32  # STEPLINE_EVENT_SEND_THREADS, the product's default
SECRET = "bench-channel-secret"
TOKEN = "bench-channel-access-token"
FLOWS = ROOT / "bench" / "flows"
VENV_BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "STEPLINE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BARE, INSERT, BOT, EMULATOR = "bare Flask", "bare Flask + insert", "stepline", "emulator"


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(
    cmd: list[str], env: dict[str, str], health: str | None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own group, up once `health` answers (None: at once); stopped with
    SIGTERM on the way out. Its output goes to a log file, shown if something fails."""
    log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        if health is not None:
            wait_http(health)
        yield proc
    except Exception:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def bench_env(url: str, flows: Path, emulator_port: int) -> dict[str, str]:
    """The environment of the processes a benchmark starts (bot, worker, emulator)."""
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        DATABASE_URL=url,
        STEPLINE_FLOWS=str(flows),
        LINE_API_BASE_URL=f"http://127.0.0.1:{emulator_port}",
        STEPLINE_LOG_LEVEL="WARNING",
    )


def emulator_command(port: int, *options: str) -> list[str]:
    """`stepline emulator` on `port`, quiet, posting no webhooks."""
    return [
        str(VENV_BIN / "stepline"),
        "emulator",
        "--port",
        str(port),
        "--webhook-url",
        "",
        "--quiet",
        *options,
    ]


def serve_command(port: int, workers: int, threads: int) -> list[str]:
    """The bot as deployed: `stepline serve` (gunicorn; an event pool and sweeper per worker)."""
    return [
        str(VENV_BIN / "stepline"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def gunicorn(app: str, port: int, workers: int, threads: int) -> list[str]:
    """A baseline under the gunicorn settings `stepline serve` uses (bot/web/serving.py)."""
    return [
        str(VENV_BIN / "gunicorn"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--timeout",
        "30",
        "--access-logfile",
        "-",
    ]


def worker_command() -> list[str]:
    return [str(VENV_BIN / "stepline"), "worker"]


def wait_quiet(pids: list[int], timeout: float = 30.0) -> None:
    """Wait until the processes are done starting (no CPU spent for half a second)."""
    deadline = time.monotonic() + timeout
    last = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(1.0)
    while time.monotonic() < deadline:
        now = sum(cpu_seconds(pid) for pid in pids)
        if now - last < 0.02:
            return
        last = now
        time.sleep(0.5)


# ---------------------------------------------------------------------- databases


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh database: a SQLite file, or a PostgreSQL schema named after the run (which is
    also the connections' `application_name`, to find their backends)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(url: str, friends: int) -> list[str]:
    """Friends mid-questionnaire (conversation at step `pick` of the bench flow)."""
    upgrade(url)
    catalogue = load_catalogue(FLOWS)
    source = catalogue.flow_sources["bench"]
    now = datetime.now(UTC)
    users = [f"U{uuid.uuid4().hex}" for _ in range(friends)]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(FlowVersion),
            [
                {
                    "flow": "bench",
                    "content_hash": source.content_hash,
                    "yaml_text": source.text,
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            insert(Friend),
            [
                {
                    "line_user_id": u,
                    "display_name": "ベンチ",
                    "status": "following",
                    "followed_at": now,
                    "created_at": now,
                }
                for u in users
            ],
        )
        ids = dict(conn.execute(select(Friend.line_user_id, Friend.id)).all())
        conn.execute(
            insert(Conversation),
            [
                {
                    "friend_id": ids[u],
                    "flow": "bench",
                    "flow_version": source.content_hash,
                    "state": "pick",
                    "status": "active",
                    "retries": 0,
                    "started_at": now,
                    "updated_at": now,
                }
                for u in users
            ],
        )
    engine.dispose()
    return users


def bare_inserts(url: str) -> int:
    """Rows the bare-insert app wrote."""
    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.scalar(select(func.count()).select_from(bodies)) or 0)
    engine.dispose()
    return count


def register_friends(emulator: str, users: list[str]) -> None:
    """Make the seeded friends friends at the emulator too: a late answer is pushed, and the
    emulator refuses pushes to users it does not know."""
    response = requests.post(
        f"{emulator}/_emulator/users/bulk", json={"user_ids": users}, timeout=60
    )
    response.raise_for_status()


def set_latency(emulator: str, latency_ms: float) -> None:
    """Every Messaging API call to the emulator waits this long before it is handled."""
    response = requests.put(
        f"{emulator}/_emulator/chaos", json={"latency_ms": latency_ms}, timeout=10
    )
    response.raise_for_status()


# ---------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class App:
    name: str
    url: str  # its /callback


@dataclass
class Measured:
    """One phase against one app: acknowledgements and their CPU; for the bot also the
    backlog and its drain, CPU from the start to drained, and the replies."""

    app: str
    result: Result
    ack_cpu: Spent
    drain: Drain | None = None
    processing_cpu: Spent | None = None
    replies: Replies | None = None


@dataclass
class Processing:
    """Preloaded events drained by `workers` worker processes."""

    workers: int
    events: int
    drain: Drain
    cpu: Spent
    replies: Replies

    @property
    def rate(self) -> float:
        return self.events / self.drain.seconds if self.drain.seconds else 0.0


@dataclass
class Stack:
    """The running processes of one backend and what observes them."""

    backend: str
    args: argparse.Namespace
    env: dict[str, str]
    apps: dict[str, App]
    queue: Queue
    replies: ReplyLog
    source: EventSource
    cpu: CpuMeter
    sent_to: dict[str, int] = field(default_factory=dict)  # events answered 200, by app

    def count(self, app: str, result: Result) -> None:
        self.sent_to[app] = self.sent_to.get(app, 0) + result.events - result.errors


def run_load(stack: Stack, app: str, name: str, load: Callable[..., Any], *how: float) -> Measured:
    """One load phase against `app`; for the bot, then wait until it has drained."""
    before = stack.cpu.snapshot()
    url = stack.apps[app].url
    result: Result = asyncio.run(load(name, url, stack.source, *how))
    stack.count(app, result)
    measured = Measured(app, result, stack.cpu.spent(before))
    if app == BOT:
        measured.drain = stack.queue.wait_drained(stack.args.drain_timeout)
        measured.processing_cpu = stack.cpu.spent(before)
        measured.replies = stack.replies.match(result.sent, stack.queue.answers())
    return measured


def warm_up(stack: Stack) -> None:
    """A second of load on each app (connections, caches, the pool's threads), drained."""
    for app in stack.apps:
        result = asyncio.run(closed_loop("warm-up", stack.apps[app].url, stack.source, 4, 1.0))
        stack.count(app, result)
    stack.queue.wait_drained(stack.args.drain_timeout)


def max_phase(stack: Stack) -> list[Measured]:
    """(a) Closed loop as fast as it goes, against each app."""
    args = stack.args
    return [
        run_load(stack, app, f"{app}, max", closed_loop, args.concurrency, args.duration)
        for app in stack.apps
    ]


def paced_phases(stack: Stack) -> list[Measured]:
    """(b) Open loop at each rate, against each app."""
    measured = []
    for rate in stack.args.rate_list:
        for app in stack.apps:
            name = f"{app} at {rate:.0f}/s"
            measured.append(run_load(stack, app, name, open_loop, rate, stack.args.duration))
    return measured


def processing_phase(stack: Stack, workers: int) -> Processing:
    """(c) Preloaded events, nobody's, drained by `workers` `stepline worker` processes."""
    args = stack.args
    with contextlib.ExitStack() as running:
        procs = [
            running.enter_context(process(worker_command(), stack.env, None))
            for _ in range(workers)
        ]
        wait_quiet([p.pid for p in procs])
        sent = preload(stack.env, stack.source, args.drain_events)
        for i, proc in enumerate(procs, 1):
            stack.cpu.watch(f"worker {i}", proc.pid)
        before = stack.cpu.snapshot()
        release(stack.queue)
        drain = stack.queue.wait_drained(args.drain_timeout)
        cpu = stack.cpu.spent(before)
        for i in range(1, workers + 1):
            stack.cpu.forget(f"worker {i}")
    stack.sent_to["preloaded"] = stack.sent_to.get("preloaded", 0) + len(sent)
    replies = stack.replies.match(sent, stack.queue.answers())
    return Processing(workers, len(sent), Drain(len(sent), drain.seconds), cpu, replies)


# ---------------------------------------------------------------------- checks


def check_work(stack: Stack, url: str, missing: int) -> list[str]:
    """What does not add up: every event stored once and done, none failed, every reply
    accepted by the emulator (`missing`: events whose answer was not found), every baseline
    insert there."""
    tally = stack.queue.tally()
    expected = stack.sent_to.get(BOT, 0) + stack.sent_to.get("preloaded", 0)
    accepted = stack.replies.counts()
    answers = accepted.get("/v2/bot/message/reply", 0) + accepted.get("/v2/bot/message/push", 0)
    print(
        f"{stack.backend}: work done {json.dumps(tally)}; emulator accepted {answers} answers",
        flush=True,
    )
    problems = []
    if tally.get("events stored", 0) != expected:
        problems.append(f"events stored {tally.get('events stored', 0)} != sent {expected}")
    if tally.get("events done", 0) != expected:
        problems.append(f"events done {tally.get('events done', 0)} != sent {expected}")
    for status in ("received", "failed", "ignored"):
        if tally.get(f"events {status}", 0):
            problems.append(f"{tally[f'events {status}']} event(s) {status}")
    if tally.get("events failed", 0) or tally.get("events ignored", 0):
        problems.append(f"why: {stack.queue.failures(events=True)}")
    if tally.get("outbox sent", 0) != expected or answers != expected:
        problems.append(f"replies sent {tally.get('outbox sent', 0)}, accepted {answers}")
    unsent = {k: v for k, v in tally.items() if k.startswith("outbox") and k != "outbox sent"}
    if unsent:
        problems.append(f"outbox rows not sent: {unsent}; why: {stack.queue.failures()}")
    if missing:
        problems.append(f"{missing} event(s) with no accepted answer found")
    if INSERT in stack.apps and bare_inserts(url) != stack.sent_to.get(INSERT, 0):
        problems.append(f"bare inserts {bare_inserts(url)} != {stack.sent_to.get(INSERT, 0)}")
    return problems


# ---------------------------------------------------------------------- report


def ms(value: float) -> str:
    return "        – " if math.isnan(value) else f"{value:7.1f} ms"


def seconds(value: float | None) -> str:
    return f"{value:6.1f} s" if value is not None else "  (timeout)"


def cpu_line(spent: Spent, events: int, first: list[str]) -> str:
    """CPU per event: the measured processes first, then the others that spent something."""
    per = spent.per_event_ms(events)
    order = [*first, EMULATOR, POSTGRES, OWN, OTHERS]
    parts = [f"{name} {per[name]:.2f}" for name in order if per.get(name, 0) >= 0.005]
    return ", ".join(parts) + f" ms (machine busy {spent.cores():.2f} of {os.cpu_count()} cores)"


def print_table(backend: str, runs: list[Measured]) -> None:
    print(f"\n{backend}: acknowledgements (and, for stepline, processing)")
    print(
        f"  {'run':<32} {'ev/s':>7} {'ack p50':>10} {'ack p99':>10} {'err':>4}"
        f" {'reply p50':>10} {'reply p99':>10} {'backlog':>8} {'drained':>9}"
    )
    for m in runs:
        r = m.result
        line = f"  {r.name:<32} {r.rate:7.0f} {ms(r.pct(0.5))} {ms(r.pct(0.99))} {r.errors:4d}"
        if m.replies is not None and m.drain is not None:
            line += (
                f" {ms(m.replies.pct(0.5))} {ms(m.replies.pct(0.99))}"
                f" {m.drain.backlog:8d} {seconds(m.drain.seconds)}"
            )
        print(line)
    print("  CPU per acknowledged event:")
    for m in runs:
        print(f"    {m.result.name}: {cpu_line(m.ack_cpu, m.result.events, [m.app])}")
    print("  CPU per processed event, from the start of the load until drained:")
    for m in runs:
        if m.processing_cpu is not None:
            print(f"    {m.result.name}: {cpu_line(m.processing_cpu, m.result.events, [BOT])}")
    pushed = sum(m.replies.pushed for m in runs if m.replies)
    missing = sum(m.replies.missing for m in runs if m.replies)
    print(f"  answers pushed (reply window passed): {pushed}; events with no answer: {missing}")


def print_processing(runs: list[Processing], latency_ms: float) -> None:
    print(
        f"\npostgresql: processing {runs[0].events} stored events held by no process "
        f"(emulator latency {latency_ms:.0f} ms)"
    )
    for p in runs:
        workers = [name for name in p.cpu.seconds if name.startswith("worker")]
        per_worker = ", ".join(f"{name} {p.cpu.seconds[name]:.1f} s" for name in workers)
        print(
            f"  {p.workers} worker(s): {p.rate:6.0f} ev/s, drained in {seconds(p.drain.seconds)}; "
            f"CPU {per_worker}"
        )
        print(f"    CPU per event: {cpu_line(p.cpu, p.events, workers)}")
        print(f"    answers pushed {p.replies.pushed}, events with no answer {p.replies.missing}")
    if len(runs) == 2 and runs[0].rate:
        print(f"  2 workers / 1 worker: {runs[1].rate / runs[0].rate:.2f}")


def print_goals(stack: Stack, runs: list[Measured], processing: list[Processing]) -> None:
    """The figures the goals in docs/BENCHMARKS.md are judged on."""
    by_name = {m.result.name: m for m in runs}
    bot, base = by_name[f"{BOT}, max"], by_name[f"{INSERT}, max"]
    drain = bot.drain
    assert drain is not None
    args = stack.args
    print(f"\n{stack.backend}: against the goals")
    print(
        f"  acknowledgements/s stepline / bare insert: {bot.result.rate / base.result.rate:.2f}"
        f" (goal ≥ 0.5); backlog {drain.backlog} when the load stopped, "
        f"drained in {seconds(drain.seconds).strip()}"
    )
    for rate in args.rate_list:
        m = by_name[f"{BOT} at {rate:.0f}/s"]
        assert m.drain is not None and m.replies is not None and m.processing_cpu is not None
        kept = "kept up" if m.drain.kept_up else "fell behind"
        print(
            f"  at {rate:.0f}/s: ack p50 {m.result.pct(0.5):.1f} ms, p99 {m.result.pct(0.99):.1f}"
            f" ms; processing {kept} (backlog {m.drain.backlog}, drained in "
            f"{seconds(m.drain.seconds).strip()}); event-to-reply p50 "
            f"{m.replies.pct(0.5):.0f} ms, p99 {m.replies.pct(0.99):.0f} ms; stepline CPU per "
            f"processed event {m.processing_cpu.per_event_ms(m.result.events).get(BOT, 0):.2f} ms"
        )
    if args.latency_ms:
        bound = args.workers * SEND_THREADS / (args.latency_ms / 1000)
        print(
            f"  the send threads' bound with {args.latency_ms:.0f} ms per LINE call: "
            f"{args.workers} workers × {SEND_THREADS} send threads / "
            f"{args.latency_ms / 1000:g} s = {bound:.0f} events/s (a send thread waits for "
            "each reply; the event threads only apply)"
        )
    if len(processing) == 2 and processing[0].rate:
        print(f"  processing 2 workers / 1: {processing[1].rate / processing[0].rate:.2f}")


def summary(runs: list[Measured], processing: list[Processing]) -> dict[str, Any]:
    """The figures as JSON, for the record."""
    out: dict[str, Any] = {}
    for m in runs:
        r = m.result
        entry: dict[str, Any] = {
            "events_per_s": round(r.rate, 1),
            "ack_p50_ms": round(r.pct(0.5), 2),
            "ack_p99_ms": round(r.pct(0.99), 2),
            "errors": r.errors,
            "cpu_ms_per_event": {
                k: round(v, 3) for k, v in m.ack_cpu.per_event_ms(r.events).items()
            },
        }
        if m.drain is not None and m.replies is not None:
            entry["backlog"] = m.drain.backlog
            entry["drain_s"] = m.drain.seconds
            entry["reply_p50_ms"] = round(m.replies.pct(0.5), 1)
            entry["reply_p99_ms"] = round(m.replies.pct(0.99), 1)
        out[r.name] = entry
    for p in processing:
        out[f"processing, {p.workers} worker(s)"] = {
            "events_per_s": round(p.rate, 1),
            "cpu_s": {k: round(v, 2) for k, v in p.cpu.seconds.items()},
        }
    return out


# ---------------------------------------------------------------------- a backend


@contextmanager
def running_apps(
    env: dict[str, str], args: argparse.Namespace
) -> Iterator[dict[str, tuple[App, int]]]:
    """The two baselines and the bot, each on a port of its own: name → (app, pid)."""
    w, t = args.workers, args.threads
    commands: dict[str, Callable[[int], list[str]]] = {
        BARE: lambda port: gunicorn("bench.bare_app:app", port, w, t),
        INSERT: lambda port: gunicorn("bench.bare_insert_app:app", port, w, t),
        BOT: lambda port: serve_command(port, w, t),
    }
    with contextlib.ExitStack() as running:
        apps = {}
        for name, command in commands.items():
            port = free_port()
            health = f"http://127.0.0.1:{port}/healthz"
            proc = running.enter_context(process(command(port), env, health))
            apps[name] = (App(name, f"http://127.0.0.1:{port}/callback"), proc.pid)
        yield apps


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every phase on one database; the table, the goals' figures, the checks."""
    with database(backend) as url:
        users = seed(url, args.friends)
        create_table(url)
        emulator_port = free_port()
        emulator = f"http://127.0.0.1:{emulator_port}"
        env = dict(
            bench_env(url, FLOWS, emulator_port), STEPLINE_EVENT_THREADS=str(args.event_threads)
        )
        admin = create_engine(POSTGRES_URL) if backend == "postgresql" else None
        stack = Stack(
            backend,
            args,
            env,
            {},
            Queue(url),
            ReplyLog(emulator),
            EventSource(users, SECRET),
            CpuMeter(admin, url.rsplit("application_name=", 1)[-1]),
        )
        emulator_cmd = emulator_command(emulator_port, "--accept-unknown-reply-tokens")
        processing: list[Processing] = []
        try:
            with process(emulator_cmd, env, f"{emulator}/_emulator/health") as emulator_proc:
                stack.cpu.watch(EMULATOR, emulator_proc.pid)
                register_friends(emulator, users)
                set_latency(emulator, args.latency_ms)
                with running_apps(env, args) as apps:
                    for name, (app, pid) in apps.items():
                        stack.apps[name] = app
                        stack.cpu.watch(name, pid)
                    warm_up(stack)
                    runs = max_phase(stack) + paced_phases(stack)
                    for name in apps:
                        stack.cpu.forget(name)
                if backend == "postgresql" and args.drain_events:
                    set_latency(emulator, args.drain_latency_ms)
                    processing = [processing_phase(stack, n) for n in (1, 2)]
                replies = [m.replies for m in runs if m.replies] + [p.replies for p in processing]
                problems = check_work(stack, url, sum(r.missing for r in replies))
        finally:
            stack.queue.dispose()
            if admin is not None:
                admin.dispose()
    print_table(backend, runs)
    if processing:
        print_processing(processing, args.drain_latency_ms)
    print_goals(stack, runs, processing)
    for problem in problems:
        print(f"{backend}: WARNING {problem}", flush=True)
    if not problems:
        print(f"{backend}: checks passed (every event stored once and done, every answer accepted)")
    return summary(runs, processing)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument(
        "--rates", default="150,300", help="events/s of the paced phases, comma-separated"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections in the max phase")
    parser.add_argument("--friends", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (every app)")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument(
        "--event-threads",
        type=int,
        default=4,
        help="STEPLINE_EVENT_THREADS: the event pool's threads per process",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=200.0, help="emulator latency on every LINE call"
    )
    parser.add_argument(
        "--drain-events",
        type=int,
        default=5000,
        help="events preloaded for the processing phase (PostgreSQL; 0 skips it)",
    )
    parser.add_argument(
        "--drain-latency-ms",
        type=float,
        default=0.0,
        help="emulator latency in the processing phase (with 200 ms it measures the pool's "
        "threads waiting, not the processing)",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=600.0, help="longest wait for a backlog to drain"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2 s phases, 1,000 preloaded events"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.drain_events, args.drain_timeout = 2.0, 1000, 180.0
    args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    return args


def main() -> None:
    args = parse_args()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, python {platform.python_version()}"
        f", load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"gunicorn gthread workers={args.workers} threads={args.threads} (stepline serve and "
        f"both baselines), STEPLINE_EVENT_THREADS={args.event_threads}, LINE latency "
        f"{args.latency_ms:.0f} ms; load: aiohttp, {args.concurrency} connections (max) / "
        f"{args.rates} ev/s (paced), {args.duration:g} s each",
        flush=True,
    )
    figures = {backend: run_backend(backend.strip(), args) for backend in args.backends.split(",")}
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
