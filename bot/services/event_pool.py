"""The process's event pool: friends' webhook events processed in threads, one friend at a
time each, different friends in parallel; and the sweep that takes what no process holds.

`/callback` hands the friends of the events it just stored to `submit` (no added latency:
a thread starts on them at once); a friend already being processed is marked to be looked at
again, so their later events follow in order rather than in a second thread. The sweep (every
`serve` worker and `stepline worker` run one) claims events whose process died after its 200,
and retries that came due.

Two kinds of threads, because an event is two kinds of work: applying it is a short database
transaction and Python CPU (a few threads are enough: on SQLite one writer runs at a time,
and every thread shares one interpreter lock), while sending its reply is waiting ~tens to
hundreds of ms for LINE. Many appliers made the door itself wait: 32 of them per process
contending for SQLite's write lock and the interpreter left the acknowledgements at 58/s
where 4 gave 188/s. So the appliers hand each event's messages to the send threads and go on
to the next friend; a friend's sends still leave in the order of their events.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.runtime import Runtime
from bot.services.inbox import claim_waiting, process_friend
from storage.models import OutboxMessage

log = logging.getLogger(__name__)


class EventPool:
    """Processes friends' events off the request path; safe to share between threads."""

    def __init__(self, runtime: Runtime, *, threads: int | None = None) -> None:
        self.runtime = runtime
        self.owner = f"events-{uuid.uuid4().hex[:16]}"
        self.threads = threads or runtime.settings.event_threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._senders: ThreadPoolExecutor | None = None
        self._sending: dict[str, Future[None]] = {}  # each friend's latest send

    # ------------------------------------------------------------------ processing

    def submit(self, friends: Iterable[str]) -> None:
        """Process these friends' waiting events soon (each friend in one thread at a time)."""
        with self._lock:
            if self._stopping.is_set():
                return  # a stopping process leaves them to the sweep of another
            if self._executor is None:
                # Created on first use: under gunicorn that is in the worker, after the fork.
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="events")
                self._senders = ThreadPoolExecutor(
                    self.runtime.settings.event_send_threads, thread_name_prefix="event-sends"
                )
            for friend in friends:
                if friend in self._running:
                    self._again.add(friend)
                    continue
                self._running.add(friend)
                self._executor.submit(self._run, friend)

    def _run(self, friend: str) -> None:
        while True:
            try:
                process_friend(
                    self.runtime, friend, self.owner, lambda rows: self._send(friend, rows)
                )
            except Exception:
                # The database is down, say: the events stay claimed until the lease ends,
                # then a sweep (this process's or another's) takes them again.
                log.exception("processing the events of %s stopped", friend)
            with self._lock:
                if friend in self._again and not self._stopping.is_set():
                    self._again.discard(friend)
                    continue
                self._again.discard(friend)
                self._running.discard(friend)
                if not self._running and not self._sending:
                    self._idle.notify_all()
                return

    def _send(self, friend: str, rows: list[OutboxMessage]) -> None:
        """Send an event's messages from a send thread, after the friend's previous send."""
        with self._lock:
            assert self._senders is not None
            previous = self._sending.get(friend)
            future = self._senders.submit(self._send_after, previous, rows)
            self._sending[friend] = future
        future.add_done_callback(lambda done: self._sent(friend, done))

    def _send_after(self, previous: Future[None] | None, rows: list[OutboxMessage]) -> None:
        if previous is not None:
            # Submitted earlier to the same first-in-first-out pool: it is running or done,
            # so waiting for it cannot deadlock.
            with contextlib.suppress(Exception):
                previous.result()
        self.runtime.sender.send_claimed(rows)

    def _sent(self, friend: str, done: Future[None]) -> None:
        if done.exception() is not None:
            # The rows stay claimed until their lease ends; then the worker sends them.
            log.error("sending for %s failed", friend, exc_info=done.exception())
        with self._lock:
            if self._sending.get(friend) is done:
                del self._sending[friend]
            if not self._running and not self._sending:
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no friend is being processed and nothing is being sent (tests,
        shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # ------------------------------------------------------------------ sweeping

    def sweep(self) -> int:
        """Claim due events no live process holds and process them here; how many friends."""
        friends = claim_waiting(self.runtime, self.owner)
        if friends:
            log.info("sweep: took the waiting events of %d friend(s)", len(friends))
            self.submit(friends)
        return len(friends)

    def start_sweeping(self, every: float | None = None) -> None:
        """Sweep in a background thread every `every` seconds (default: the setting)."""
        interval = every or self.runtime.settings.event_sweep_seconds
        with self._lock:
            if self._sweeper is not None:
                return
            self._sweeper = threading.Thread(
                target=self._sweep_forever, args=(interval,), name="events-sweep", daemon=True
            )
            self._sweeper.start()

    def _sweep_forever(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.sweep()
            except Exception:
                log.exception("event sweep failed; trying again in %.0f s", interval)

    def close(self, wait: float = 10.0) -> None:
        """Stop sweeping, let running friends finish (up to `wait` s); what is left waits
        for another process's sweep (its lease runs out)."""
        self._stopping.set()
        self.wait_idle(wait)
        with self._lock:
            executor, self._executor = self._executor, None
            senders, self._senders = self._senders, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if senders is not None:
            senders.shutdown(wait=False)
