"""Fixtures for delivery tests: the full stack, friends who follow, and queued pushes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.delivery.outbox import queue_for_friend
from storage.db import Database
from storage.models import Friend, OutboxMessage
from tests.e2e.bot.conftest import TEST_FLOWS
from tests.support import LineUser, Stack, start_stack


@pytest.fixture
def stack(db: Database, clock: FrozenClock) -> Iterator[Stack]:
    started = start_stack(db, clock, TEST_FLOWS)
    yield started
    started.stop()


def follower(stack: Stack, name: str = "花子") -> LineUser:
    user = stack.user(name)
    user.follow()
    user.received()
    return user


def queue_push(stack: Stack, user: LineUser, *texts: str) -> list[int]:
    """Queue pushes for a friend the way the engine does (pending, retry key fixed)."""
    now = stack.clock.now()
    with stack.db.write() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user.user_id)).one()
        rows = queue_for_friend(
            session,
            friend,
            [{"type": "text", "text": t} for t in texts],
            reply_token=None,
            cause="test",
            now=now,
        )
        return [row.id for row in rows]


def outbox(stack: Stack, outbox_id: int) -> OutboxMessage:
    with stack.db.read() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.id == outbox_id)).one()


def fault(stack: Stack, **spec: Any) -> None:
    requests.post(
        f"{stack.emulator.url}/_emulator/faults", json=spec, timeout=10
    ).raise_for_status()
