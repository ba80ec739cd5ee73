"""`stepline db upgrade` and `stepline serve` as real processes (gunicorn), SIGHUP reload,
and no secret in any log line."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from bot.logging_setup import RedactSecrets
from tests.e2e.bot.conftest import TEST_FLOWS
from tests.support import ADMIN, SECRET, TOKEN, LineUser, settled_through

STEPLINE = str(Path(sys.executable).parent / "stepline")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@dataclass
class Served:
    """A `stepline serve` process against the emulator, on its own copy of the test flows."""

    base: str
    user: LineUser
    flows: Path
    log: Path
    pid: int
    env: dict[str, str]


@contextlib.contextmanager
def serve_process(
    tmp_path: Path, database_url: str, *, workers: int = 1, **env_changes: str
) -> Iterator[Served]:
    """Start `stepline db upgrade` then `stepline serve` (gunicorn, `workers` workers) wired to
    a LINE emulator with one user; stop both afterwards."""
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    port = free_port()
    emulator = ServerThread(
        create_emulator_app(
            EmulatorConfig(
                channel_secret=SECRET,
                channel_access_token=TOKEN,
                webhook_url=f"http://127.0.0.1:{port}/callback",
            )
        )
    ).start()
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'served.db'}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_BASE_URL=emulator.url,
        STEPLINE_FLOWS=str(flows),
        STEPLINE_ADMIN_TOKEN=ADMIN,
        STEPLINE_LOG_LEVEL="DEBUG",
        **env_changes,
    )
    upgrade = subprocess.run(
        [STEPLINE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert "planner statistics refreshed (ANALYZE)" in upgrade.stdout
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [STEPLINE, "serve", "--port", str(port), "--workers", str(workers), "--threads", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,  # its own group: `os.killpg(pid)` stops master and workers
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/healthz", timeout=1).status_code == 200)
        user_id = requests.post(
            f"{emulator.url}/_emulator/users", json={"name": "花子"}, timeout=10
        ).json()["user_id"]
        yield Served(
            base,
            LineUser(emulator.url, user_id, "花子", settle=settled_through(database_url)),
            flows,
            log,
            proc.pid,
            env,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        emulator.stop()


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[str, LineUser, Path, Path, int]]:
    with serve_process(tmp_path, database_url) as s:
        yield s.base, s.user, s.flows, s.log, s.pid


@pytest.mark.slow
def test_serve_answers_reloads_on_sighup_and_logs_no_secret(
    served: tuple[str, LineUser, Path, Path, int],
) -> None:
    base, user, flows, log, master = served
    user.follow()
    assert user.texts() == ["花子さん、性別を教えてください"]

    (flows / "broken.yaml").write_text("flow: x\nsteps: [{ask: a}]\n", encoding="utf-8")
    os.kill(master, signal.SIGHUP)
    wait_until(
        lambda: requests.get(f"{base}/healthz", timeout=2).json()["catalogue_problems"] != []
    )
    user.tap("女性")  # still served by the last good catalogue
    assert user.texts() == ["年齢を数字で教えてください"]

    (flows / "broken.yaml").unlink()
    os.kill(master, signal.SIGHUP)
    wait_until(
        lambda: requests.get(f"{base}/healthz", timeout=2).json()["catalogue_problems"] == []
    )

    text = log.read_text(encoding="utf-8", errors="replace")
    assert "catalogue" in text  # the reload was logged...
    for secret in (SECRET, TOKEN, ADMIN):
        assert secret not in text  # ...and no secret ever was


def test_serve_without_credentials_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "STEPLINE_"))}
    result = subprocess.run(
        [STEPLINE, "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "LINE_CHANNEL_SECRET" in result.stderr
    assert "LINE_CHANNEL_ACCESS_TOKEN" in result.stderr


def test_redaction_filter_hides_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s ok", (TOKEN,), None)
    assert RedactSecrets([TOKEN]).filter(record)
    assert record.getMessage() == "token=*** ok"
