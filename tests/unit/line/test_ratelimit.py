"""Token buckets pace sends at a rate, with bursts up to the capacity."""

from __future__ import annotations

import random

from bot.emulator.ratelimits import RateLimiter as LineLimiter
from bot.line.ratelimit import DEFAULT_LIMITS, RateLimiter, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_bucket_allows_a_burst_then_paces() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, burst=5, monotonic=time.monotonic, sleep=time.sleep)
    for _ in range(5):
        assert bucket.acquire() == 0
    for _ in range(10):
        bucket.acquire()
    # 10 more tokens at 10/s take a second.
    assert abs(time.slept - 1.0) < 1e-6


def test_limiter_uses_lines_defaults_and_overrides() -> None:
    limiter = RateLimiter({"push": 20})
    assert limiter.buckets["push"].rate == 20
    assert limiter.buckets["reply"].rate == 2000
    assert limiter.acquire("unknown-kind") == 0


def test_limiter_paces_an_overridden_rate_after_a_burst_of_95_percent() -> None:
    time = FakeTime()
    limiter = RateLimiter({"multicast": 20}, monotonic=time.monotonic, sleep=time.sleep)
    for _ in range(19):  # the burst: 95 % of a second's worth
        assert limiter.acquire("multicast") == 0
    for _ in range(40):
        limiter.acquire("multicast")
    assert abs(time.slept - 2.0) < 0.05  # then 20 a second


def line_refusals(sender_bucket: TokenBucket, time: FakeTime, requests: int) -> int:
    """Requests paced by `sender_bucket` that LINE's own bucket (the emulator's, at LINE's
    200/s for multicast) refuses, when the first half reach LINE 20-25 ms after they left
    and the rest 0-5 ms after (a worker busy planning, then idle: what was seen)."""
    jitter = random.Random(7)
    arrivals = []
    for n in range(requests):
        sender_bucket.acquire()
        delay = 0.02 if n < requests // 2 else 0.0
        arrivals.append(time.now + delay + jitter.uniform(0, 0.005))
    clock = iter(sorted(arrivals))
    line = LineLimiter(enabled=True, now=lambda: next(clock))
    return sum(not line.allow("POST", "/v2/bot/message/multicast") for _ in range(len(arrivals)))


def test_lines_bucket_keeps_a_reserve_for_requests_arriving_bunched() -> None:
    # Requests leave at the limit's pace, but when the delay on their way shrinks (the
    # worker's planning ends and its sending threads get the CPU), they reach LINE closer
    # together than they left. Our bucket holds less than LINE's, so LINE's keeps the
    # difference in reserve and takes them; with a bucket the size of LINE's it would not.
    time = FakeTime()
    ours = RateLimiter(monotonic=time.monotonic, sleep=time.sleep).buckets["multicast"]
    assert line_refusals(ours, time, 2000) == 0
    time = FakeTime()
    as_large_as_lines = TokenBucket(
        DEFAULT_LIMITS["multicast"], monotonic=time.monotonic, sleep=time.sleep
    )
    assert line_refusals(as_large_as_lines, time, 2000) > 0
