"""Engine and session setup: SQLite (WAL, busy timeout, BEGIN IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15_000
POSTGRES_POOL_SIZE = 16


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with stepline's connection rules applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    # The worker runs a sender pool (8 threads by default) beside the broadcast and step jobs:
    # with SQLAlchemy's default of 5 pooled connections the rest were opened and closed again
    # for every transaction (250 new PostgreSQL connections in one 200,000-friend broadcast).
    # Connections are still opened only when needed; this is how many are kept.
    kwargs.setdefault("pool_size", POSTGRES_POOL_SIZE)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so that writes can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction that starts deferred and upgrades later can fail with
        # SQLITE_BUSY without waiting; BEGIN IMMEDIATE queues behind the writer instead.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


class _UrgentFirstMutex:
    """A mutex whose urgent waiters are served before the others."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, *, urgent: bool) -> None:
        with self._condition:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._held or (not urgent and self._urgent_waiting):
                    self._condition.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._held = True

    def release(self) -> None:
        with self._condition:
            self._held = False
            self._condition.notify_all()


class SqliteWriteLock:
    """One writer at a time, queued in the kernel rather than in SQLite's busy handler.

    SQLite's busy handler polls with sleeps of up to 100 ms, which wrecks latency as soon as
    two writers meet. Threads queue on a mutex, processes (gunicorn workers, the worker) on
    an flock of a file next to the database.
    """

    def __init__(self, database: str | None) -> None:
        self._mutex = _UrgentFirstMutex()
        in_memory = database is None or database in ("", ":memory:")
        self._path = None if database is None or in_memory else Path(database + ".writelock")
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> SqliteWriteLock:
        self._acquire(urgent=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    @contextlib.contextmanager
    def hold(self, *, urgent: bool) -> Iterator[None]:
        """Hold the lock; an `urgent` writer (the webhook door's one insert, which LINE
        waits for) goes before the background writers queued in this process."""
        self._acquire(urgent=urgent)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, *, urgent: bool) -> None:
        self._mutex.acquire(urgent=urgent)
        if self._path is not None:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
            except BaseException:
                self._mutex.release()
                raise

    def _release(self) -> None:
        try:
            if self._path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _descriptor(self) -> int:
        # After a fork the inherited descriptor shares its lock with the parent: reopen.
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


class Database:
    """An engine plus the two kinds of session stepline uses: write and read."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False
        )
        self._write_lock: contextlib.AbstractContextManager[object] = (
            SqliteWriteLock(self.engine.url.database)
            if self.is_sqlite
            else contextlib.nullcontext()
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def write(self, *, urgent: bool = False) -> Iterator[Session]:
        """One write transaction: commit on success, roll back on any error. On SQLite an
        `urgent` one is queued before this process's other writers (see SqliteWriteLock)."""
        lock: contextlib.AbstractContextManager[object] = (
            self._write_lock.hold(urgent=urgent)
            if isinstance(self._write_lock, SqliteWriteLock)
            else self._write_lock
        )
        with lock, self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def write_core(self) -> Iterator[Connection]:
        """A write transaction on a bare Core connection: cheaper than a Session for a
        statement or two (the sender's bookkeeping)."""
        with self._write_lock, self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    def ping(self) -> bool:
        try:
            # A deferred read: the health check must not queue behind writers.
            with self.engine.execution_options(sqlite_begin="DEFERRED").connect() as conn:
                conn.execute(text("SELECT 1"))
                conn.rollback()
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
