"""One catalogue across processes: `POST /api/v1/flows/reload`, answered by one gunicorn
worker, reaches every worker of `stepline serve` and the `stepline worker` process."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.bot.test_serve import STEPLINE, serve_process, wait_until
from tests.support import ADMIN, LineUser

NEWS = """\
tags: [新着希望]
---
keywords:
  - {match: 新着, reply: 新着は毎週金曜日です}
---
sequence: news
start_on: [{tag_added: 新着希望}]
steps:
  - {after: 0m, text: 新着のお知らせです}
"""


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[Path]:
    """`stepline worker` with short ticks, its output in `log`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [STEPLINE, "worker", "--tick", "0.2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def every_worker(base: str, holds: Callable[[dict[str, Any]], bool], workers: int = 2) -> None:
    """Ask `/healthz` until each of the `workers` gunicorn workers (told apart by pid) has
    answered, the latest answer of each satisfying `holds`."""
    latest: dict[int, dict[str, Any]] = {}

    def all_hold() -> bool:
        body = requests.get(f"{base}/healthz", timeout=5).json()
        latest[body.get("pid", 0)] = body
        return len(latest) == workers and all(holds(b) for b in latest.values())

    wait_until(all_hold, timeout=30)


def running(body: dict[str, Any]) -> str | None:
    version = body.get("catalogue_version") or {}
    return (version.get("running") or {}).get("hash")


def wait_for_text(user: LineUser, text: str) -> None:
    def arrived() -> bool:
        user.received()
        return any(d["message"].get("text") == text for d in user.inbox)

    wait_until(arrived)
    user.inbox.clear()


@pytest.mark.slow
def test_a_reload_reaches_every_gunicorn_worker_and_the_worker_process(
    tmp_path: Path, database_url: str
) -> None:
    with (
        serve_process(
            tmp_path, database_url, workers=2, STEPLINE_CATALOGUE_CHECK_SECONDS="0.3"
        ) as served,
        worker_process(served.env, tmp_path / "worker.log") as worker_log,
    ):
        user = served.user
        wait_until(lambda: " started (ticks: " in worker_log.read_text(encoding="utf-8"), 60)
        user.follow()
        wait_for_text(user, "花子さん、性別を教えてください")
        every_worker(served.base, lambda body: body.get("catalogue_version", {})["in_sync"])
        before = running(requests.get(f"{served.base}/healthz", timeout=5).json())

        (served.flows / "news.yaml").write_text(NEWS, encoding="utf-8")
        answer = requests.post(
            f"{served.base}/api/v1/flows/reload",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        version = answer.json()["catalogue_version"]
        assert version["id"] is not None and version["hash"] != before

        # Both gunicorn workers run the new version, whichever answered the reload.
        every_worker(served.base, lambda body: running(body) == version["hash"])
        every_worker(
            served.base,
            lambda body: (
                body["catalogue_version"]
                == {
                    "running": version,
                    "newest": version,
                    "in_sync": True,
                    "problem": None,
                }
            ),
        )
        # So every message meets the new keyword, whichever worker takes it.
        for _ in range(8):
            user.say("新着")
            wait_for_text(user, "新着は毎週金曜日です")

        # The worker process follows too: a step of a sequence only the new flows have.
        wait_until(
            lambda: (
                f"catalogue version {version['id']} ({version['hash'][:12]}) in force"
                in worker_log.read_text(encoding="utf-8", errors="replace")
            )
        )
        patched = requests.patch(
            f"{served.base}/api/v1/friends/{user.user_id}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"add_tags": ["新着希望"]},
            timeout=30,
        )
        assert patched.status_code == 200, patched.text
        wait_for_text(user, "新着のお知らせです")
