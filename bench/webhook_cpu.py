"""CPU accounting for the webhook benchmark: who spent the machine's two cores in a phase.

Each named process is counted with its children (gunicorn's workers), PostgreSQL by the
backends of this run's connections (found by `application_name`), the load generator as this
process, and the machine as a whole; what the machine spent beyond all of those is "others"
(the other engineers' tests on a shared box).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil
from sqlalchemy import Engine, text

OWN = "load generator"
POSTGRES = "postgres"
OTHERS = "others"


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its children (gunicorn's workers); 0 once it is gone."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in family:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, idle and iowait excluded)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass(frozen=True)
class Snapshot:
    wall: float
    seconds: dict[str, float]  # cumulative CPU by name (a backend by its pid)
    machine: float


@dataclass(frozen=True)
class Spent:
    """CPU seconds by name over a span of `wall` seconds (OTHERS: the rest of the machine)."""

    wall: float
    seconds: dict[str, float]

    def per_event_ms(self, events: int) -> dict[str, float]:
        return {name: 1000 * s / events for name, s in self.seconds.items()} if events else {}

    def cores(self) -> float:
        """How many cores the machine was busy on average (ours and others)."""
        return sum(self.seconds.values()) / self.wall if self.wall else 0.0


class CpuMeter:
    """Snapshots of cumulative CPU for the processes of a run; `spent` gives the difference."""

    def __init__(self, postgres: Engine | None = None, application_name: str = "") -> None:
        self.processes: dict[str, int] = {}
        self.postgres = postgres
        self.application_name = application_name

    def watch(self, name: str, pid: int) -> None:
        self.processes[name] = pid

    def forget(self, name: str) -> None:
        self.processes.pop(name, None)

    def snapshot(self) -> Snapshot:
        seconds = {name: cpu_seconds(pid) for name, pid in self.processes.items()}
        seconds[OWN] = time.process_time()
        for pid in self._backends():
            seconds[f"{POSTGRES}:{pid}"] = cpu_seconds(pid)
        return Snapshot(time.perf_counter(), seconds, machine_busy_seconds())

    def spent(self, before: Snapshot) -> Spent:
        """CPU by name since `before`; the PostgreSQL backends summed, the rest as OTHERS."""
        after = self.snapshot()
        spent: dict[str, float] = {}
        for key, value in after.seconds.items():
            name = POSTGRES if key.startswith(f"{POSTGRES}:") else key
            spent[name] = spent.get(name, 0.0) + value - before.seconds.get(key, 0.0)
        spent[OTHERS] = max(0.0, after.machine - before.machine - sum(spent.values()))
        return Spent(after.wall - before.wall, spent)

    def _backends(self) -> list[int]:
        """The PostgreSQL backends serving this run's connections (readable only when the
        server runs on this machine; none otherwise)."""
        if self.postgres is None:
            return []
        with self.postgres.connect() as conn:
            pids = conn.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": self.application_name},
            ).all()
        return [int(pid) for pid in pids if psutil.pid_exists(pid) and pid != os.getpid()]
