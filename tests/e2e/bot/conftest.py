"""The full stack for bot tests: the LINE emulator and the bot, each on a real HTTP port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from storage.db import Database
from tests.support import Stack, start_stack

TEST_FLOWS = Path(__file__).parent / "flows"

StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(db: Database, clock: FrozenClock) -> Iterator[StackFactory]:
    started: list[Stack] = []

    def make(flows: Path = TEST_FLOWS, **settings_changes: object) -> Stack:
        stack = start_stack(db, clock, flows, **settings_changes)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
