"""The webhook benchmark's load generator: signed postbacks sent closed loop or paced.

Each event is a postback answering the bench questionnaire's question, for the friends in
turn; the load generator notes for each event its id and when it was (to be) sent on the
wall clock, so the reply LINE accepted can be matched to it afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.catalogue.postbacks import choice_data
from bot.line.signature import sign


@dataclass(frozen=True)
class Sent:
    """One event sent: its `webhookEventId` and the wall-clock moment it was due to be sent."""

    event_id: str
    at: float


class EventSource:
    """Signed postback events answering the bench question, round-robin over the friends."""

    def __init__(self, users: list[str], secret: str) -> None:
        self.users = users
        self.secret = secret
        self.n = 0

    def event(self) -> dict[str, Any]:
        """The next event (each friend's answer alternates A, B)."""
        user = self.users[self.n % len(self.users)]
        choice = (self.n // len(self.users)) % 2
        self.n += 1
        return {
            "type": "postback",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": uuid.uuid4().hex[:26].upper(),
            "deliveryContext": {"isRedelivery": False},
            "replyToken": uuid.uuid4().hex,
            "postback": {"data": choice_data("bench", "pick", choice)},
        }

    def request(self) -> tuple[str, bytes, dict[str, str]]:
        """The next event as a signed one-event webhook body: its id, body, headers."""
        event = self.event()
        body = json.dumps({"destination": "Ubench", "events": [event]}).encode()
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(self.secret, body)}
        return event["webhookEventId"], body, headers


@dataclass
class Result:
    """The acknowledgements of one phase against one app."""

    name: str
    events: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    sent: list[Sent] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    name: str, url: str, source: EventSource, concurrency: int, duration: float
) -> Result:
    """`concurrency` connections, each sending the next event as soon as the last is answered."""
    latencies: list[float] = []
    sent: list[Sent] = []
    errors = 0
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                event_id, body, headers = source.request()
                sent.append(Sent(event_id, time.time()))
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), errors, elapsed, latencies, sent)


async def open_loop(
    name: str, url: str, source: EventSource, rate: float, duration: float
) -> Result:
    """Send at a fixed rate whatever the answers; latency counts from each planned moment
    (so a stall shows in the figures instead of slowing the sender down)."""
    latencies: list[float] = []
    sent: list[Sent] = []
    errors = 0
    total = int(rate * duration)
    wall_offset = time.time() - time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as session:

        async def one(planned: float) -> None:
            nonlocal errors
            event_id, body, headers = source.request()
            sent.append(Sent(event_id, planned + wall_offset))
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
    return Result(name, len(latencies), errors, elapsed, latencies, sent)
