"""A harness for engine tests: no HTTP server, no LINE client, no emulator.

A migrated SQLite file under `tmp_path`, a frozen clock (2026-11-23 10:00 in Tokyo), and a
catalogue written inline as YAML. Each event runs as one turn in one transaction, as
`bot.engine.events.apply_event` runs it, and returns what the engine produced:

    def test_hello(make_engine: MakeEngine) -> None:
        engine = make_engine('''
            flow: hello
            start_on: [{follow: new}]
            steps:
              - {ask: q, text: こんにちは, choices: [{label: はい, do: [{tag: 挨拶済み}]}]}
            ''')
        assert engine.follow("U1").texts == ["こんにちは"]
        engine.tap("U1", "hello", "q", 0)
        assert engine.tags("U1") == {"挨拶済み"}

What a turn queues (reply or push, outbox rows, rich-menu links) is the services' business and
is not run here: `Outcome.messages` is the LINE message JSON the engine asked to send.
"""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from ruamel.yaml import YAML
from sqlalchemy import select

from bot.catalogue import Catalogue
from bot.catalogue.loader import load_catalogue
from bot.catalogue.models import Action, Condition
from bot.catalogue.postbacks import choice_data
from bot.clock import FrozenClock
from bot.engine import fields as fieldlib
from bot.engine.dispatch import Dispatcher
from bot.engine.events import apply_event
from bot.engine.friend_record import FriendRecord, TagIds, lock_friend
from bot.engine.sequences import Sequences
from bot.engine.templates import Templates
from bot.engine.turn import SkippedSend, Turn
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Conversation,
    FieldValue,
    Friend,
    FriendTag,
    SequenceEnrollment,
    Tag,
)

TOKYO = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 23, 10, 0, tzinfo=TOKYO)  # a Monday; where every test's clock starts


@dataclass
class Outcome:
    """What one turn produced."""

    messages: list[dict[str, Any]]  # LINE message objects, in order
    link_menu: bool = False  # the friend's rich menu changed: the service would link it
    skipped: list[SkippedSend] = field(default_factory=list)  # not sent: the service records

    @classmethod
    def of(cls, turn: Turn) -> Outcome:
        return cls(turn.outgoing, turn.link_menu, list(turn.skipped))

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages if m["type"] == "text"]

    @property
    def quick_replies(self) -> list[dict[str, Any]]:
        """The actions of the last message's quick replies."""
        if not self.messages:
            return []
        items = self.messages[-1].get("quickReply", {}).get("items", [])
        return [item["action"] for item in items]

    @property
    def labels(self) -> list[str]:
        return [action["label"] for action in self.quick_replies]


class Engine:
    """The engine over one database and one catalogue, driven one friend's event at a time."""

    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        clock: FrozenClock,
        *,
        late_policy: str = "send",
        late_grace: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.clock = clock
        self.templates = Templates(TOKYO, links=None)  # `link('id')` renders the plain URL
        self.tag_ids = TagIds()
        self.dispatcher = Dispatcher(
            sequences=Sequences(late_policy=late_policy, late_grace=late_grace)
        )

    # ------------------------------------------------------------------ turns

    @contextlib.contextmanager
    def turn(self, user: str, *, create: bool = False) -> Iterator[Turn]:
        """One turn of `user` in one transaction (committed on exit), for calling the engine
        directly. Nothing runs `dispatcher.finish`: call it when the test needs triggers to
        fire and the rich menu to be settled."""
        now = self.clock.now()
        tag_ids = self.tag_ids.fork()
        with self.db.write() as session:
            friend = lock_friend(session, user, now, create=create)
            if friend is None:
                raise LookupError(f"no friend {user}")
            yield Turn(
                record=FriendRecord(session, friend, self.catalogue, now, TOKYO, tag_ids),
                catalogue=self.catalogue,
                templates=self.templates,
                cause=f"test:{user}",
            )
        tag_ids.committed()

    def event(
        self, user: str, event: dict[str, Any], *, profile_name: str | None = None
    ) -> Outcome:
        """One LINE webhook event of `user`, applied as the webhook service applies it
        (`bot.engine.events.apply_event`): follow/block bookkeeping, then the dispatcher."""
        with self.turn(user, create=event.get("type") != "unfollow") as turn:
            apply_event(self.dispatcher, turn, event, profile_name=profile_name)
        return Outcome.of(turn)

    def follow(self, user: str, name: str = "花子") -> Outcome:
        """A follow event (an unblock if the friend followed before)."""
        return self.event(user, {"type": "follow"}, profile_name=name)

    def unfollow(self, user: str) -> Outcome:
        return self.event(user, {"type": "unfollow"})

    def say(self, user: str, text: str) -> Outcome:
        """The friend types `text`."""
        return self.event(user, {"type": "message", "message": {"type": "text", "text": text}})

    def postback(self, user: str, data: str, params: dict[str, Any] | None = None) -> Outcome:
        postback: dict[str, Any] = {"data": data} | ({"params": params} if params else {})
        return self.event(user, {"type": "postback", "postback": postback})

    def tap(
        self, user: str, flow: str, step: str, index: int, params: dict[str, Any] | None = None
    ) -> Outcome:
        """The friend taps choice `index` (from 0) of question `step` of `flow`."""
        return self.postback(user, choice_data(flow, step, index), params)

    def run_due_step(self, user: str, sequence: str) -> Outcome:
        """The friend's next step of `sequence`, if due now (as `bot.services.due_steps`)."""
        with self.turn(user) as turn:
            self.dispatcher.sequences.run_due_step(turn, sequence)
            self.dispatcher.finish(turn)
        return Outcome.of(turn)

    # ------------------------------------------------------------------ time

    def move_to(self, local: datetime) -> None:
        """Set the clock (give an aware datetime, e.g. in `TOKYO`)."""
        self.clock.set(local)

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    # ------------------------------------------------------------------ the database

    def friend(self, user: str) -> Friend:
        with self.db.read() as session:
            friend = session.scalars(select(Friend).where(Friend.line_user_id == user)).one()
            session.expunge(friend)
            return friend

    def tags(self, user: str) -> set[str]:
        with self.db.read() as session:
            return set(
                session.scalars(
                    select(Tag.name)
                    .join(FriendTag, FriendTag.tag_id == Tag.id)
                    .join(Friend, Friend.id == FriendTag.friend_id)
                    .where(Friend.line_user_id == user)
                )
            )

    def fields(self, user: str) -> dict[str, Any]:
        """The stored field values (catalogue defaults of unset fields are not stored)."""
        with self.db.read() as session:
            rows = session.scalars(
                select(FieldValue)
                .join(Friend, Friend.id == FieldValue.friend_id)
                .where(Friend.line_user_id == user)
            )
            return {row.name: fieldlib.from_json(row.type, row.value_json) for row in rows}

    def conversations(self, user: str) -> list[dict[str, Any]]:
        """The friend's conversations, oldest first: flow, state (step) and status."""
        with self.db.read() as session:
            rows = session.scalars(
                select(Conversation)
                .join(Friend, Friend.id == Conversation.friend_id)
                .where(Friend.line_user_id == user)
                .order_by(Conversation.id)
            )
            return [{"flow": c.flow, "state": c.state, "status": c.status} for c in rows]

    def conversation(self, user: str) -> dict[str, Any] | None:
        """The friend's latest conversation (None if they never started one)."""
        found = self.conversations(user)
        return found[-1] if found else None

    def enrolment(self, user: str, sequence: str) -> dict[str, Any] | None:
        """The friend's enrolment in `sequence`: status, next step and when (Tokyo time)."""
        with self.db.read() as session:
            row = session.scalars(
                select(SequenceEnrollment)
                .join(Friend, Friend.id == SequenceEnrollment.friend_id)
                .where(Friend.line_user_id == user, SequenceEnrollment.sequence == sequence)
            ).first()
            if row is None:
                return None
            due = row.next_due_at.astimezone(TOKYO) if row.next_due_at else None
            return {"status": row.status, "next_step": row.next_step, "due": due}


# ---------------------------------------------------------------------------- YAML snippets

_yaml = YAML(typ="safe")


def condition(text: str) -> Condition:
    """A condition written as in the catalogue, e.g. `condition("{tag: 女性}")`."""
    return TypeAdapter(Condition).validate_python(_yaml.load(text))


def actions(text: str) -> list[Action]:
    """An action list written as in the catalogue, e.g. `actions("[{tag: 女性}]")`."""
    return TypeAdapter(list[Action]).validate_python(_yaml.load(text))


# ---------------------------------------------------------------------------- fixtures

MakeEngine = Callable[..., Engine]


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty migrated database, made once; each test gets a copy."""
    path = tmp_path_factory.mktemp("engine-db") / "stepline.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def make_engine(migrated_db: Path, tmp_path: Path) -> Iterator[MakeEngine]:
    """`make_engine(yaml, **sequences_options)`: an engine on a fresh database and that
    catalogue (several documents separated by `---`; indentation is removed)."""
    databases: list[Database] = []

    def make(catalogue_yaml: str, **options: Any) -> Engine:
        folder = tmp_path / f"flows{len(databases)}"
        folder.mkdir()
        (folder / "catalogue.yaml").write_text(textwrap.dedent(catalogue_yaml), encoding="utf-8")
        path = tmp_path / f"stepline{len(databases)}.db"
        shutil.copyfile(migrated_db, path)
        db = Database(f"sqlite:///{path}")
        databases.append(db)
        return Engine(db, load_catalogue(folder), FrozenClock(START), **options)

    yield make
    for db in databases:
        db.dispose()
