"""Test drivers: the whole stack (emulator + bot over real HTTP) and a simulated LINE user."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.clock import FrozenClock
from bot.config import Settings
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.emulator.http_server import ServerThread
from bot.runtime import Runtime
from bot.services.event_pool import EventPool
from bot.services.timeouts import expire_due_conversations
from bot.web.app import create_app
from storage.db import Database
from storage.models import (
    Friend,
    OutboxMessage,
    OutboxStatus,
    SequenceEnrollment,
    WebhookEvent,
    WebhookEventStatus,
)

SECRET = "test-channel-secret-0123456789"
TOKEN = "test-channel-access-token-abcdefghijklmnop"
ADMIN = "test-admin-token-xyz"


@dataclass
class LineUser:
    """A simulated LINE user, acting through the emulator (which signs and posts webhooks)."""

    emulator_url: str
    user_id: str
    name: str
    seen: int = 0
    inbox: list[dict[str, Any]] = field(default_factory=list)
    # Waits until the bot has processed what it acknowledged (it processes off the request).
    settle: Callable[[], object] | None = None

    def _post(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.emulator_url}/_emulator/users/{self.user_id}/{action}",
            json=body or {},
            timeout=30,
        )
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        assert result.get("status") == 200, f"bot answered {result}"
        if self.settle is not None:
            self.settle()
        return result

    def follow(self) -> dict[str, Any]:
        return self._post("follow")

    def unfollow(self) -> dict[str, Any]:
        return self._post("unfollow")

    def say(self, text: str) -> dict[str, Any]:
        return self._post("text", {"text": text})

    def postback(self, data: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"data": data}
        if params:
            body["params"] = params
        return self._post("postback", body)

    def received(self) -> list[dict[str, Any]]:
        """Messages delivered since the last call (each with `via` and `message`)."""
        response = requests.get(
            f"{self.emulator_url}/_emulator/users/{self.user_id}/messages",
            params={"since": self.seen},
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        self.seen = body["last_seq"]
        self.inbox.extend(body["messages"])
        return list(body["messages"])

    def texts(self) -> list[str]:
        return [d["message"].get("text", d["message"].get("altText", "")) for d in self.received()]

    def last_quick_replies(self) -> list[dict[str, Any]]:
        for delivery in reversed(self.inbox):
            items = delivery["message"].get("quickReply", {}).get("items", [])
            if items:
                return [item["action"] for item in items]
        return []

    def tap(self, label: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """Tap the quick reply labelled `label` under the latest message that has any."""
        self.received()
        for action in self.last_quick_replies():
            if action.get("label") == label:
                if action["type"] == "message":
                    return self.say(action["text"])
                return self.postback(action["data"], params)
        raise AssertionError(f"no quick reply {label!r} in {self.last_quick_replies()}")


@dataclass
class Stack:
    emulator: ServerThread
    bot: ServerThread
    runtime: Runtime
    clock: FrozenClock
    db: Database
    events: EventPool

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the bot has processed every webhook event it acknowledged."""
        assert self.events.wait_idle(timeout), f"events still processing after {timeout} s"

    def stop(self) -> None:
        self.bot.stop()
        self.events.close()
        self.emulator.stop()
        self.runtime.line.close()

    def user(self, name: str = "花子") -> LineUser:
        response = requests.post(
            f"{self.emulator.url}/_emulator/users", json={"name": name}, timeout=10
        )
        response.raise_for_status()
        return LineUser(self.emulator.url, response.json()["user_id"], name, settle=self.settle)

    def api(
        self, method: str, path: str, token: str | None = ADMIN, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, f"{self.bot.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def friend(self, user: LineUser) -> dict[str, Any]:
        response = self.api("GET", f"/friends/{user.user_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def emulator_get(self, path: str) -> Any:
        response = requests.get(f"{self.emulator.url}/_emulator{path}", timeout=10)
        response.raise_for_status()
        return response.json()


def start_stack(
    db: Database,
    clock: FrozenClock,
    flows: Path,
    *,
    account_name: str | None = None,
    **settings_changes: object,
) -> Stack:
    """The LINE emulator and the bot, each on a real HTTP port, wired to each other the way
    `stepline demo` wires them (shared clock, the simulator's side panel and time machine);
    `account_name` is the LINE account's name the chat shows (the demo's salon, say)."""
    emulator_config = EmulatorConfig(channel_secret=SECRET, channel_access_token=TOKEN, clock=clock)
    if account_name is not None:
        emulator_config.bot_display_name = account_name
    emulator = ServerThread(create_emulator_app(emulator_config)).start()
    settings = Settings(
        database_url=db.url,
        channel_secret=SECRET,
        channel_access_token=TOKEN,
        line_api_base_url=emulator.url,
        line_data_api_base_url=emulator.url,
        flows_dir=flows,
        admin_token=ADMIN,
    ).with_(**settings_changes)
    app = create_app(settings, clock=clock, db=db)
    runtime: Runtime = app.extensions["stepline"]
    bot = ServerThread(app).start()
    emulator_config.bot_api_url = bot.url
    emulator_config.bot_admin_token = settings.admin_token
    emulator_config.on_clock_change = lambda: expire_due_conversations(runtime)
    requests.put(
        f"{emulator.url}/_emulator/config", json={"webhook_url": f"{bot.url}/callback"}, timeout=10
    ).raise_for_status()
    return Stack(emulator, bot, runtime, clock, db, app.extensions["stepline.events"])


def settled_through(database_url: str, timeout: float = 30.0) -> Callable[[], None]:
    """For a bot in another process: a `settle` that waits until the database holds no
    webhook event still waiting and no message in the middle of being sent."""

    def settle() -> None:
        db = Database(database_url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                with db.read() as session:
                    busy = session.scalar(
                        select(func.count())
                        .select_from(WebhookEvent)
                        .where(WebhookEvent.status == WebhookEventStatus.RECEIVED)
                    ) or session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == OutboxStatus.SENDING)
                    )
                if not busy:
                    return
                assert time.monotonic() < deadline, f"the bot is still busy after {timeout} s"
                time.sleep(0.02)
        finally:
            db.dispose()

    return settle


def wait_until_healthy(
    process: subprocess.Popen[str], health_url: str, timeout: float = 10
) -> None:
    """Wait for a started server process to answer `health_url`; fail with its output if it
    exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(health_url, timeout=1).raise_for_status()
            return
        except requests.RequestException:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, f"{health_url} did not answer in {timeout} s"
            time.sleep(0.05)


def add_friends(db: Database, count: int, first: int = 0) -> list[int]:
    """`count` plain following friends (user ids numbered from `first`), written directly;
    every friend's id, in order."""
    created = datetime(2026, 11, 23, tzinfo=UTC)
    with db.write() as session:
        session.execute(
            insert(Friend),
            [
                {
                    "line_user_id": f"U{n:032x}",
                    "display_name": "",
                    "status": "following",
                    "created_at": created,
                }
                for n in range(first, first + count)
            ],
        )
        return list(session.scalars(select(Friend.id).order_by(Friend.id)))


def enroll_friend(
    session: Session, line_user_id: str, sequence: str, due: datetime, now: datetime
) -> None:
    """Enrol the friend (added as following when the bot does not know them yet) in
    `sequence`, its first step due at `due`."""
    friend = session.scalars(select(Friend).where(Friend.line_user_id == line_user_id)).first()
    if friend is None:
        friend = Friend(
            line_user_id=line_user_id,
            display_name="",
            status="following",
            followed_at=now,
            created_at=now,
        )
        session.add(friend)
        session.flush()
    session.add(
        SequenceEnrollment(
            friend_id=friend.id,
            sequence=sequence,
            status="active",
            started_at=now,
            next_step=0,
            next_due_at=due,
            updated_at=now,
            reason="test",
        )
    )


def write_flows(directory: Path, **documents: str) -> Path:
    """A flows directory under `directory` holding `<name>.yaml` for each document."""
    flows = directory / "flows"
    flows.mkdir()
    for name, text in documents.items():
        (flows / f"{name}.yaml").write_text(text, encoding="utf-8")
    return flows
