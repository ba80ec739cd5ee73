"""The full stack for bot tests: the LINE emulator and the bot, each on a real HTTP port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import Settings
from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig
from bot.http_server import ServerThread
from storage.db import Database
from tests.support import ADMIN, SECRET, TOKEN, Stack

TEST_FLOWS = Path(__file__).parent / "flows"

StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(db: Database, clock: FrozenClock) -> Iterator[StackFactory]:
    started: list[Stack] = []

    def make(flows: Path = TEST_FLOWS, **settings_changes: object) -> Stack:
        emulator = ServerThread(
            create_emulator_app(
                EmulatorConfig(channel_secret=SECRET, channel_access_token=TOKEN, clock=clock)
            )
        ).start()
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
        bot = ServerThread(app).start()
        requests.put(
            f"{emulator.url}/_emulator/config",
            json={"webhook_url": f"{bot.url}/callback"},
            timeout=10,
        ).raise_for_status()
        stack = Stack(emulator, bot, app.extensions["stepline"], clock, db)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.bot.stop()
        stack.emulator.stop()
        stack.runtime.line.close()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
