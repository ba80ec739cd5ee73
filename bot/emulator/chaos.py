"""Probabilistic fault injection ("chaos") on the Messaging API paths.

`PUT /_emulator/chaos` switches it on for an emulator, `DELETE` off. Per matched request one
draw from the emulator's own seeded `random.Random` (taken under the store lock, so a seed gives
the same sequence of outcomes for the same sequence of requests) picks at most one kind:

- `5xx`: answer 500 (LINE's error body) without doing anything;
- `429`: answer 429 `{"message": "Too Many Requests"}` (+ `Retry-After` if configured) without
  doing anything;
- `accept_then_drop`: do the work fully (deliver, count, consume the retry key) and then drop
  the response: the connection is closed without an answer (see `app.ResponseDropper`).

`latency_ms` (`{"min", "max"}`, drawn uniformly, or one number) delays every matched request
before it is handled. Scripted one-off faults (`/_emulator/faults`) are separate and win over
chaos for the request they match.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, cast

Kind = Literal["5xx", "429", "accept_then_drop"]
KINDS: tuple[Kind, ...] = ("5xx", "429", "accept_then_drop")
TOO_MANY_REQUESTS = "Too Many Requests"
INTERNAL_ERROR = "Internal server error"


class ChaosError(ValueError):
    """A chaos setting that does not make sense (the control API answers 400)."""


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChaosError(f"'{name}' must be a number")
    return float(value)


@dataclass(frozen=True)
class ChaosSettings:
    rates: dict[Kind, float] = field(default_factory=dict)
    retry_after: int | None = None
    latency_min_ms: float = 0
    latency_max_ms: float = 0
    paths: tuple[str, ...] | None = None  # None: every Messaging API path
    seed: int | None = None
    status_5xx: int = 500

    @classmethod
    def from_json(cls, body: Any) -> ChaosSettings:
        """Parse `{"rates": {kind: p}, "retry_after": s, "latency_ms": {"min", "max"} | n,
        "paths": [...] | "*", "seed": n, "status_5xx": 500}`; raises `ChaosError`."""
        if not isinstance(body, dict):
            raise ChaosError("the chaos settings must be a JSON object")
        unknown = set(body) - {
            "rates",
            "retry_after",
            "latency_ms",
            "paths",
            "seed",
            "status_5xx",
        }
        if unknown:
            raise ChaosError(f"unknown chaos setting(s): {', '.join(sorted(unknown))}")
        raw_rates = body.get("rates") or {}
        if not isinstance(raw_rates, dict):
            raise ChaosError("'rates' must be an object such as {\"5xx\": 0.05}")
        rates: dict[Kind, float] = {}
        for kind, value in raw_rates.items():
            if kind not in KINDS:
                raise ChaosError(f"unknown fault kind '{kind}' (one of {', '.join(KINDS)})")
            rate = _number(value, f"rates.{kind}")
            if not 0 <= rate <= 1:
                raise ChaosError(f"'rates.{kind}' must be between 0 and 1")
            rates[cast(Kind, kind)] = rate
        if sum(rates.values()) > 1 + 1e-9:
            raise ChaosError("the rates add up to more than 1")
        retry_after = body.get("retry_after")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ChaosError("'retry_after' must be a non-negative integer (seconds) or null")
        latency = body.get("latency_ms") or 0
        if isinstance(latency, dict):
            if set(latency) - {"min", "max"}:
                raise ChaosError("'latency_ms' takes 'min' and 'max'")
            low = _number(latency.get("min", 0), "latency_ms.min")
            high = _number(latency.get("max", low), "latency_ms.max")
        else:
            low = high = _number(latency, "latency_ms")
        if low < 0 or high < low:
            raise ChaosError("'latency_ms' needs 0 <= min <= max")
        paths = body.get("paths", "*")
        parsed_paths: tuple[str, ...] | None
        if paths is None or paths == "*":
            parsed_paths = None
        elif isinstance(paths, list) and all(
            isinstance(p, str) and (p == "*" or p.startswith("/")) for p in paths
        ):
            parsed_paths = None if "*" in paths else tuple(paths)
        else:
            raise ChaosError("'paths' must be \"*\" or a list of API paths (fnmatch patterns)")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ChaosError("'seed' must be an integer or null")
        status_5xx = body.get("status_5xx", 500)
        if isinstance(status_5xx, bool) or not isinstance(status_5xx, int):
            raise ChaosError("'status_5xx' must be an integer between 500 and 599")
        if not 500 <= status_5xx <= 599:
            raise ChaosError("'status_5xx' must be an integer between 500 and 599")
        return cls(rates, retry_after, low, high, parsed_paths, seed, status_5xx)

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": {kind: self.rates.get(kind, 0.0) for kind in KINDS},
            "retry_after": self.retry_after,
            "latency_ms": {"min": self.latency_min_ms, "max": self.latency_max_ms},
            "paths": list(self.paths) if self.paths is not None else "*",
            "seed": self.seed,
            "status_5xx": self.status_5xx,
        }

    def applies_to(self, path: str) -> bool:
        return self.paths is None or any(fnmatchcase(path, p) for p in self.paths)


@dataclass(frozen=True)
class Decision:
    """What chaos does to one request: wait `latency_ms`, then inject `kind` (None: nothing)."""

    kind: Kind | None
    latency_ms: float
    settings: ChaosSettings


class Chaos:
    """The chaos switch of one emulator: settings, its seeded RNG and counters.

    Uses the store's lock, so draws and counts are consistent with the rest of the state."""

    def __init__(self, lock: threading.RLock, settings: ChaosSettings | None = None) -> None:
        self._lock = lock
        self._settings: ChaosSettings | None = None
        self._rng = random.Random()
        self._requests: Counter[str] = Counter()
        self._injected: dict[Kind, Counter[str]] = {kind: Counter() for kind in KINDS}
        self._latency_ms_total = 0.0
        self.configure(settings)

    @property
    def settings(self) -> ChaosSettings | None:
        with self._lock:
            return self._settings

    def configure(self, settings: ChaosSettings | None) -> None:
        """Switch chaos on with `settings` (None: off); counters start again from zero and the
        RNG from the seed."""
        with self._lock:
            self._settings = settings
            self.reset()

    def reset(self) -> None:
        """Zero the counters and re-seed (the settings stay)."""
        with self._lock:
            seed = self._settings.seed if self._settings else None
            self._rng = random.Random(seed)
            self._requests.clear()
            for counter in self._injected.values():
                counter.clear()
            self._latency_ms_total = 0.0

    def decide(self, path: str) -> Decision | None:
        """One draw for a request to `path`; None when chaos is off or does not cover it.
        The kind is not counted until `record` (a scripted fault or the rate limiter may
        answer first)."""
        with self._lock:
            settings = self._settings
            if settings is None or not settings.applies_to(path):
                return None
            self._requests[path] += 1
            roll = self._rng.random()
            kind: Kind | None = None
            threshold = 0.0
            for candidate in KINDS:
                threshold += settings.rates.get(candidate, 0.0)
                if roll < threshold:
                    kind = candidate
                    break
            latency = settings.latency_min_ms
            if settings.latency_max_ms > settings.latency_min_ms:
                latency = self._rng.uniform(settings.latency_min_ms, settings.latency_max_ms)
            self._latency_ms_total += latency
            return Decision(kind, latency, settings)

    def record(self, path: str, kind: Kind) -> None:
        with self._lock:
            self._injected[kind][path] += 1

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            settings = self._settings
            return {
                "enabled": settings is not None,
                "settings": settings.to_json() if settings else None,
                "counters": {
                    "requests_total": sum(self._requests.values()),
                    "requests": dict(self._requests),
                    "injected_total": {
                        kind: sum(counter.values()) for kind, counter in self._injected.items()
                    },
                    "injected": {kind: dict(counter) for kind, counter in self._injected.items()},
                    "latency_ms_total": round(self._latency_ms_total, 3),
                },
            }
