#!/usr/bin/env python3
"""Webhook benchmark: the full answer path under gunicorn vs a bare Flask app, same settings.

    .venv/bin/python bench/webhook.py [--duration 10] [--rate 300] [--backends sqlite,postgresql]

For each database it starts the LINE emulator, the bot (`gunicorn wsgi:app`) and a bare Flask
app that only answers 200 (`gunicorn bench.bare_app:app`), with the same gunicorn settings.
Friends are seeded mid-questionnaire; each event is a signed postback answering the question:
the event is stored, the conversation moves, a tag is swapped, the reply goes to the emulator.

Phases: (1) closed loop, as fast as `--concurrency` connections go, against the bare app and
the bot: events/s, p50, p99; (2) open loop at `--rate` events/s against the bot: p50, p99.
Afterwards it checks the bot really did the work (events stored, replies accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil
import requests
from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.catalogue.loader import load_catalogue  # noqa: E402
from bot.catalogue.postbacks import choice_data  # noqa: E402
from bot.line.signature import sign  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Conversation, FlowVersion, Friend, OutboxMessage, WebhookEvent  # noqa: E402

SECRET = "bench-channel-secret"
TOKEN = "bench-channel-access-token"
FLOWS = ROOT / "bench" / "flows"
VENV_BIN = Path(sys.executable).parent
POSTGRES = os.environ.get(
    "STEPLINE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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
def process(cmd: list[str], env: dict[str, str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_http(health)
        yield proc
    except Exception:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
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


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its children (gunicorn's workers)."""
    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def gunicorn(app: str, port: int, workers: int, threads: int) -> list[str]:
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
        "gthread",
        "--log-level",
        "warning",
    ]


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
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


class EventSource:
    """Signed postback bodies answering the bench question, round-robin over the friends."""

    def __init__(self, users: list[str]) -> None:
        self.users = users
        self.n = 0

    def next(self) -> tuple[bytes, dict[str, str]]:
        user = self.users[self.n % len(self.users)]
        choice = (self.n // len(self.users)) % 2
        self.n += 1
        event = {
            "type": "postback",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": uuid.uuid4().hex[:26].upper(),
            "deliveryContext": {"isRedelivery": False},
            "replyToken": uuid.uuid4().hex,
            "postback": {"data": choice_data("bench", "pick", choice)},
        }
        body = json.dumps({"destination": "Ubench", "events": [event]}).encode()
        return body, {"Content-Type": "application/json", "X-Line-Signature": sign(SECRET, body)}


@dataclass
class Result:
    name: str
    events: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.rate:8.0f} ev/s   p50 {self.pct(0.5):6.1f} ms   "
            f"p99 {self.pct(0.99):6.1f} ms   errors {self.errors}"
        )


async def closed_loop(
    name: str, url: str, source: EventSource, concurrency: int, duration: float
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                body, headers = source.next()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), errors, elapsed, latencies)


async def open_loop(
    name: str, url: str, source: EventSource, rate: float, duration: float
) -> Result:
    """Send at a fixed rate regardless of answers (latency measured from the planned time)."""
    latencies: list[float] = []
    errors = 0
    total = int(rate * duration)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as session:

        async def one(planned: float) -> None:
            nonlocal errors
            body, headers = source.next()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - planned) * 1000)

        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            planned = start + i / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(planned)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return Result(name, len(latencies), errors, elapsed, latencies)


def check_work(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        events = conn.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "done")
        )
        sent = conn.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        )
        other = conn.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
    engine.dispose()
    return {
        "events_done": int(events or 0),
        "replies_sent": int(sent or 0),
        "replies_not_sent": int(other or 0),
    }


def run_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with database(backend) as url:
        users = seed(url, args.friends)
        emulator_port, bot_port, bare_port = free_port(), free_port(), free_port()
        env = bench_env(url, FLOWS, emulator_port)
        emulator_cmd = emulator_command(emulator_port, "--accept-unknown-reply-tokens")
        with (
            process(
                emulator_cmd, env, f"http://127.0.0.1:{emulator_port}/_emulator/health"
            ) as emulator,
            process(
                gunicorn("wsgi:app", bot_port, args.workers, args.threads),
                env,
                f"http://127.0.0.1:{bot_port}/healthz",
            ) as bot_process,
            process(
                gunicorn("bench.bare_app:app", bare_port, args.workers, args.threads),
                env,
                f"http://127.0.0.1:{bare_port}/healthz",
            ),
        ):
            procs = {"stepline": bot_process, "emulator": emulator}
            source = EventSource(users)
            bare_url = f"http://127.0.0.1:{bare_port}/callback"
            bot_url = f"http://127.0.0.1:{bot_port}/callback"
            asyncio.run(closed_loop("warm-up", bot_url, source, 4, 1.0))
            bare = asyncio.run(
                closed_loop(
                    f"{backend}: bare Flask (max)",
                    bare_url,
                    source,
                    args.concurrency,
                    args.duration,
                )
            )
            before = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            own_before = time.process_time()
            bot = asyncio.run(
                closed_loop(
                    f"{backend}: stepline answer (max)",
                    bot_url,
                    source,
                    args.concurrency,
                    args.duration,
                )
            )
            spent = {name: cpu_seconds(p.pid) - before[name] for name, p in procs.items()}
            spent["load generator"] = time.process_time() - own_before
            print(
                f"{backend}: CPU per event in the max phase: "
                + ", ".join(f"{k} {1000 * v / bot.events:.2f} ms" for k, v in spent.items()),
                flush=True,
            )
            results += [bare, bot]
            for rate in (float(r) for r in args.rates.split(",")):
                for name, url_ in (("bare Flask", bare_url), ("stepline", bot_url)):
                    results.append(
                        asyncio.run(
                            open_loop(
                                f"{backend}: {name} at {rate:.0f}/s",
                                url_,
                                source,
                                rate,
                                args.duration,
                            )
                        )
                    )
            for r in results:
                print(r.line(), flush=True)
            print(
                f"{backend}: stepline/bare throughput ratio {bot.rate / bare.rate:.2f}", flush=True
            )
            work = check_work(url)
            print(f"{backend}: work done {work}", flush=True)
            expected = source.n - sum(len(r.latencies_ms) for r in results if "bare" in r.name)
            if work["events_done"] != expected:
                print(f"{backend}: WARNING events stored {work['events_done']} != sent {expected}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument(
        "--rates", default="150,300", help="events/s of the paced phases, comma-separated"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections in the max phase")
    parser.add_argument("--friends", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, python {platform.python_version()}"
    )
    print(
        f"gunicorn gthread workers={args.workers} threads={args.threads}; load: aiohttp, "
        f"{args.concurrency} connections (max) / {args.rates} ev/s (paced), {args.duration:.0f} s each"
    )
    all_results = []
    for backend in args.backends.split(","):
        all_results += run_backend(backend.strip(), args)
    summary = {
        r.name: {
            "events_per_s": round(r.rate, 1),
            "p50_ms": round(r.pct(0.5), 2),
            "p99_ms": round(r.pct(0.99), 2),
            "errors": r.errors,
            "mean_ms": round(statistics.fmean(r.latencies_ms), 2) if r.latencies_ms else None,
        }
        for r in all_results
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
