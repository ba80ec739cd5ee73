"""A keyword regex cannot stall the bot: `^(a+)+$` on a 30-character message took Python's
`re` 17 s (holding the database's write lock); on RE2 the round trip is ordinary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import LineUser, Stack

KEYWORDS_YAML = """\
keywords:
  - {match: "^(a+)+$", mode: regex, reply: "aだけですね"}
  - {match: "^\\\\d{3}$", mode: regex, reply: "3桁の数字ですね"}
  - {match: ping, reply: pong}
"""


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    folder = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, folder)
    (folder / "regex.yaml").write_text(KEYWORDS_YAML, encoding="utf-8")
    return make_stack(folder)


def idle_friend(stack: Stack) -> LineUser:
    """A friend with no questionnaire running (welcome starts only on a new follow)."""
    user = stack.user()
    user.follow()
    user.unfollow()
    user.follow()
    user.received()
    return user


def texts_until(user: LineUser, expected: str, timeout: float = 30) -> list[str]:
    """Texts delivered until `expected` arrives (however webhooks are processed)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while expected not in seen:
        assert time.monotonic() < deadline, f"{expected!r} never came; got {seen}"
        seen += user.texts()
        if expected not in seen:
            time.sleep(0.02)
    return seen


def test_a_catastrophic_pattern_answers_at_once(stack: Stack) -> None:
    user = idle_friend(stack)
    user.say("aaaa")
    assert texts_until(user, "aだけですね") == ["aだけですね"]

    started = time.perf_counter()
    user.say("a" * 29 + "!")
    # The friend's next message is answered after that one: its reply times both.
    user.say("ping")
    assert texts_until(user, "pong") == ["pong"]
    assert time.perf_counter() - started < 1.0


def test_digits_typed_full_width_still_match_backslash_d(stack: Stack) -> None:
    user = idle_friend(stack)
    user.say("１２３")
    assert texts_until(user, "3桁の数字ですね") == ["3桁の数字ですね"]
