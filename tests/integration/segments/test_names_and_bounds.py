"""What a segment names that does not exist (`unknown_names`: the catalogue's tags, fields,
links, sequences and questions; routes friends have; audiences uploaded; operands a field can
hold), and a segment at every bound at once still compiling and answering on both databases."""

from __future__ import annotations

import time
from dataclasses import replace
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from bot.catalogue.models import Condition, LinkDef
from bot.clock import FrozenClock
from bot.segments.bounds import MAX_CONDITIONS, MAX_IN_VALUES, MAX_NESTING
from bot.segments.names import unknown_names
from bot.segments.queries import count_matching
from bot.segments.resolving import resolve
from storage.db import Database
from tests.integration.segments import CATALOGUE, FriendSpec, write_friends

TOKYO = ZoneInfo("Asia/Tokyo")
ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)
WITH_LINK = replace(CATALOGUE, links={"coupon": LinkDef(url="https://example.com/coupon")})


def names(db: Database, raw: dict) -> list[str]:  # type: ignore[type-arg]
    with db.read() as session:
        return unknown_names(session, ADAPTER.validate_python(raw), WITH_LINK)


def test_every_unknown_name_is_listed_once(db: Database, clock: FrozenClock) -> None:
    write_friends(db, [FriendSpec(route="instagram")], clock.now(), TOKYO)
    everything = {
        "all": [
            {"tag": "a"},
            {"tag": "VIP会員"},
            {"not": {"tag": "VIP会員"}},
            {"field": "agee", "gte": 40},
            {"field": "gender", "eq": "robot"},
            {"field": "age", "in": [30, "forty", 9007199254740992]},
            {"field": "memo", "gt": 3},
            {"route": "instagram"},
            {"route": "tiktok"},
            {"audience": "vip"},
            {"audience": "gold"},
            {"clicked": "coupon"},
            {"clicked": "cuopon"},
            {"in_sequence": "onboarding"},
            {"answered": {"flow": "welcome", "step": "age"}},
        ]
    }
    assert names(db, everything) == [
        "unknown tag 'VIP会員'",
        "unknown field 'agee' (did you mean 'age'?)",
        "field 'gender': expected one of female, male, other, got 'robot'",
        "field 'age': expected an integer, got 'forty'",
        "field 'age': 9007199254740992 is out of range (an integer field holds at most "
        "±9,007,199,254,740,991)",
        "field 'memo': 'gt' compares numbers or dates; it is a text field",
        "no friend has route 'tiktok' (routes are set with PATCH /api/v1/friends/<id>)",
        "unknown audience 'gold' (upload it first)",
        "unknown link 'cuopon' (did you mean 'coupon'?)",
        "unknown sequence 'onboarding'",
        "unknown flow 'welcome'",
    ]
    assert names(db, {"any": [{"tag": "a"}, {"route": "instagram"}, {"audience": "old"}]}) == []


def test_a_segment_at_every_bound_compiles_and_answers(db: Database, clock: FrozenClock) -> None:
    """Nested as deep as allowed, as many conditions, as many `in` values (dates against a
    text field: each is compared as text, date and date-time, the costliest kind): both
    databases answer, and quickly."""
    write_friends(
        db, [FriendSpec(tags=["a"]), FriendSpec(fields={"memo": "2026-01-05"})], clock.now(), TOKYO
    )
    dates = [f"20{y:02d}-01-{d:02d}" for y in range(10, 30) for d in range(1, 11)]
    assert len(dates) == MAX_IN_VALUES
    inner: dict = {"field": "memo", "in": dates}  # type: ignore[type-arg]
    for level in range(MAX_NESTING - 1):
        inner = {"not": inner} if level % 2 else {"any": [inner, {"tag": "b"}]}
    leaves = 1 + (MAX_NESTING - 1 + 1) // 2  # the `in`, and a tag beside each `any`
    raw = {"any": [inner] + [{"clicked": f"l{i}"} for i in range(MAX_CONDITIONS - leaves)]}
    condition = resolve(raw, CATALOGUE)
    started = time.monotonic()
    with db.read() as session:
        count = count_matching(session, condition, catalogue=CATALOGUE, tz=TOKYO, now=clock.now())
    assert count in (0, 1, 2)
    assert time.monotonic() - started < 5
