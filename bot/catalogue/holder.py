"""The catalogue in force in one process, and how every process comes to run the same one.

A reload that fails keeps the last good catalogue and says why. A `serve` or `worker` process
joins the catalogue versions at its start (`join`): from then on a reload it is asked for (the
admin API, SIGHUP, the demo's file watcher) and its start record the catalogue's content hash
as the newest `catalogue_versions` row, and it looks at the newest row at most every
`check_seconds` (`follow`): when that row names another catalogue, it reloads its flows
folder. If the folder does not hold that catalogue (a broken or unfinished edit, another
host's files), it keeps the one it has and says so (`status`, `/healthz`).

Following a row never writes one: only a reload that was asked for and a start do. So two
processes with different files cannot make each other reload back and forth; the one that
wrote last is in force wherever the files agree.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.catalogue.catalogue import Catalogue, CatalogueError, Problem
from bot.catalogue.loader import folder_hash, load_catalogue
from bot.catalogue.versions import Version, Versions

log = logging.getLogger(__name__)

DEFAULT_CHECK_SECONDS = 1.0


def short(content_hash: str) -> str:
    return content_hash[:12] or "(none)"


@dataclass
class ReloadResult:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    catalogue: Catalogue | None = None
    version: Version | None = None  # the row recorded for it (None: not recorded)


class CatalogueHolder:
    """The catalogue in force; a reload that fails keeps the last good one and says why."""

    def __init__(
        self,
        folder: Path,
        initial: Catalogue | None = None,
        *,
        versions: Versions | None = None,
        check_seconds: float = DEFAULT_CHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self._current = initial
        # One load at a time (re-entrant: recording runs inside a reload).
        self._lock = threading.RLock()
        self.last_problems: list[Problem] = []
        self._versions = versions
        self.check_seconds = check_seconds
        self._monotonic = monotonic
        self._process: str | None = None  # set by `join`: this process follows the versions
        # One check at a time; a request that finds one under way goes on without waiting.
        self._checking = threading.Lock()
        self._next_check = 0.0
        self._mover: threading.Thread | None = None
        self.running: Version | None = None  # the row naming the catalogue in force here
        self.newest: Version | None = None  # the newest row at the last look
        self.mismatch: str | None = None  # why the newest row's catalogue is not in force
        self._tried: tuple[int, str] | None = None  # (row, folder hash) that failed to load

    # ------------------------------------------------------------------ the catalogue

    @property
    def current(self) -> Catalogue:
        if self._current is None:
            result = self.reload()
            if not result.ok:
                raise CatalogueError(result.problems)
        assert self._current is not None
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def content_hash(self) -> str:
        """The hash of the catalogue in force ("" for none, or one built in code)."""
        return self._current.content_hash if self._current is not None else ""

    def reload(self, how: str | None = None) -> ReloadResult:
        """Load the flows folder again; keep the last good catalogue if it has problems.

        `how` (e.g. "via API") says the reload was asked for: in a process that joined the
        versions, the catalogue is recorded as the newest version for every process."""
        with self._lock:
            result = self._reload()
            if result.ok and how is not None and self._process is not None:
                result.version = self._record(how)
            return result

    def reload_soon(self, how: str) -> None:
        """`reload(how)` in a thread of its own: for a signal handler, which must not wait
        for a lock (or the database) that the code it interrupted may hold."""
        threading.Thread(
            target=self.reload, args=(how,), name="catalogue-reload", daemon=True
        ).start()

    def _reload(self) -> ReloadResult:
        try:
            catalogue = load_catalogue(self.folder)
        except CatalogueError as exc:
            self.last_problems = exc.problems
            kept = "keeping the previous catalogue" if self._current else "no catalogue loaded"
            log.error(
                "catalogue %s has %d problem(s); %s:\n%s",
                self.folder,
                len(exc.problems),
                kept,
                "\n".join(str(p) for p in exc.problems),
            )
            return ReloadResult(ok=False, problems=exc.problems)
        self._install(catalogue)
        log.info("catalogue loaded from %s: %d flow(s)", self.folder, len(catalogue.flows))
        return ReloadResult(ok=True, catalogue=catalogue)

    def _install(self, catalogue: Catalogue, version: Version | None = None) -> None:
        self._current = catalogue
        self.last_problems = []
        if version is not None:
            self.running = version
        elif self.running is not None and self.running.content_hash != catalogue.content_hash:
            self.running = None  # not (yet) a recorded version

    # ------------------------------------------------------------------ the versions

    def join(self, process: str) -> None:
        """This process (`serve`, `worker`, `demo`) runs the newest version from now on;
        called once at its start, which records the catalogue it started with unless the
        newest row names it already (new files at a deploy are a reload)."""
        if self._versions is None:
            return
        with self._lock:
            self._process = process
            if self.content_hash:
                self._record("at start")
        self._next_check = self._monotonic() + self.check_seconds

    def _record(self, how: str) -> Version | None:
        """Record the catalogue in force as the newest version (lock held)."""
        assert self._versions is not None and self._current is not None
        if not self._current.content_hash:
            return None
        origin = f"{self._process} pid {os.getpid()} {how}"
        try:
            version = self._versions.record(self._current.content_hash, origin)
        except Exception:
            # The catalogue is in force here all the same; the others learn of it with the
            # next reload (and /healthz shows this process out of step meanwhile).
            log.exception("could not record catalogue %s", short(self._current.content_hash))
            return None
        self.running = self.newest = version
        self.mismatch = None
        log.info(
            "catalogue version %d (%s) in force (%s)",
            version.id,
            short(version.content_hash),
            origin,
        )
        return version

    def follow(self, *, wait: bool = True) -> None:
        """Move to the newest version if it is not the one in force here: a look at the
        newest row at most every `check_seconds`, nothing in between (one clock reading).

        With `wait=False` (the request path) a move reloads in a thread of its own, and the
        request goes on with the catalogue it found."""
        if self._process is None or self._monotonic() < self._next_check:
            return
        if not self._checking.acquire(blocking=False):
            return  # another thread is looking right now
        try:
            now = self._monotonic()
            if now < self._next_check:
                return
            self._next_check = now + self.check_seconds
            newest = self._look()
            if newest is None or not self._behind(newest):
                return
            if wait:
                self._move_to(newest)
            elif self._mover is None or not self._mover.is_alive():
                self._mover = threading.Thread(
                    target=self._move_to, args=(newest,), name="catalogue-follow", daemon=True
                )
                self._mover.start()
        finally:
            self._checking.release()

    def _look(self) -> Version | None:
        assert self._versions is not None
        try:
            newest = self._versions.newest()
        except Exception as exc:
            log.warning("could not read the newest catalogue version: %s", exc)
            return None
        self.newest = newest
        return newest

    def _behind(self, newest: Version) -> bool:
        """Whether the newest row names another catalogue than the one in force."""
        if newest.content_hash != self.content_hash:
            return True
        if self.running != newest:
            with self._lock:
                self.running = newest  # another process recorded the same files
                self.mismatch = None
        return False

    def _move_to(self, newest: Version) -> None:
        """Put the newest version's catalogue in force, if the flows folder holds it."""
        on_disk = folder_hash(self.folder)
        if on_disk != newest.content_hash:
            self._keep(newest, on_disk, f"the flows folder here holds {short(on_disk)}")
            return
        if self._tried == (newest.id, on_disk):
            return  # these files failed to load already; a new row or edit tries again
        with self._lock:
            if self.running is not None and self.running.id >= newest.id:
                return  # a reload here got there first
            try:
                catalogue = load_catalogue(self.folder)
            except CatalogueError as exc:
                self.last_problems = exc.problems
                self._keep(
                    newest, on_disk, f"the flows folder here has {len(exc.problems)} problem(s)"
                )
                return
            if catalogue.content_hash != newest.content_hash:
                self._keep(newest, catalogue.content_hash, "the flows changed while being read")
                return
            self._install(catalogue, newest)
            self.mismatch = None
            self._tried = None
        log.info(
            "catalogue version %d (%s) in force: %d flow(s) from %s",
            newest.id,
            short(newest.content_hash),
            len(catalogue.flows),
            self.folder,
        )

    def _keep(self, newest: Version, found: str, why: str) -> None:
        """The newest version cannot be put in force here: keep the catalogue, say why."""
        self.mismatch = (
            f"version {newest.id} is catalogue {short(newest.content_hash)}, but {why};"
            f" still running {short(self.content_hash)}"
        )
        if self._tried != (newest.id, found):
            self._tried = (newest.id, found)
            log.warning("catalogue: %s", self.mismatch)

    def status(self) -> dict[str, Any]:
        """The version in force here and the newest one, read now (for `/healthz`)."""
        newest = self._look() if self._versions is not None else None
        in_sync = newest is not None and newest.content_hash == self.content_hash
        return {
            "running": {
                "id": self.running.id if self.running is not None else None,
                "hash": self.content_hash or None,
            },
            "newest": newest.json() if newest is not None else None,
            "in_sync": in_sync,
            "problem": self.mismatch,
        }
