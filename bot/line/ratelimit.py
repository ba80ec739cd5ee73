"""Token buckets per LINE endpoint, so the sender stays under LINE's rate limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

# LINE's documented per-channel limits (Messaging API reference, "Rate limits",
# https://developers.line.biz/en/reference/messaging-api/#rate-limits): push and reply fall
# under "other API endpoints", 2,000 requests per second each; multicast has 200 per second
# (since 2025-04-23). Narrowcast and broadcast (60 per hour) arrive with broadcasts.
DEFAULT_LIMITS: dict[str, float] = {
    "push": 2000.0,
    "reply": 2000.0,
    "multicast": 200.0,
    "richmenu": 2000.0,  # linking (per user or bulk): one of "other endpoints"
}


class TokenBucket:
    """`rate` requests per second with bursts up to `burst`; `acquire` waits for a token."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._monotonic = monotonic
        self._sleep = sleep
        self._updated = monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self) -> float:
        """Take one token, waiting if needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                # The epsilon absorbs float error: 0.1 s at 10/s may refill to 0.999…
                if self._tokens >= 1 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                wait = max((1 - self._tokens) / self.rate, 1e-6)
            self._sleep(wait)
            waited += wait


# The share of LINE's burst the sender leaves unused. LINE's bucket holds a second's worth of
# requests; ours holds 95 % of that, so after the first burst LINE's keeps 5 % (50 ms of
# requests) in reserve, for good: both refill at the same rate. That reserve absorbs requests
# that reach LINE closer together than they left here (threads, the network); with equal
# buckets LINE's would sit empty and any such bunching would earn a 429 and a retry a second
# later (seen once in a run of 2,000 multicasts).
HEADROOM = 0.05


class RateLimiter:
    """One bucket per endpoint kind (`push`, `reply`, `multicast`, `richmenu`): LINE's limits
    (`DEFAULT_LIMITS`) overridden by `limits`, in requests per second."""

    def __init__(
        self,
        limits: Mapping[str, float] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self.buckets = {
            kind: TokenBucket(
                rate, max(1.0, rate * (1 - HEADROOM)), monotonic=monotonic, sleep=sleep
            )
            for kind, rate in merged.items()
        }

    def acquire(self, kind: str) -> float:
        bucket = self.buckets.get(kind)
        return bucket.acquire() if bucket else 0.0
