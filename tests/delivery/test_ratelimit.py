"""Token buckets pace sends at a rate, with bursts up to the capacity."""

from __future__ import annotations

from bot.delivery.ratelimit import RateLimiter, TokenBucket


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
