"""Segments case by case: defaults, missing values, types, time zones and daylight saving,
latest answers, clicks, routes, audiences, blocked friends, one query, named segments."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from sqlalchemy import event, select

from bot.catalogue.models import Condition, SegmentDoc, TagCondition
from bot.clock import FrozenClock
from bot.engine.friend_record import FriendRecord
from bot.segments.compile import segment_clause
from bot.segments.queries import count_matching, matching_ids_select, sample_matching
from bot.segments.resolving import SegmentError, resolve
from storage.db import Database
from storage.models import Friend
from tests.integration.segments import (
    CATALOGUE,
    FriendSpec,
    python_matches,
    sql_matches,
    write_friends,
)

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


@dataclass
class Population:
    db: Database
    now: datetime
    tz: ZoneInfo
    ids: list[int]

    def matches(self, raw: dict[str, Any] | Condition) -> list[int]:
        """Indices (into the population) of the matching friends; SQL and Python agree."""
        condition = ADAPTER.validate_python(raw) if isinstance(raw, dict) else raw
        in_sql = sql_matches(self.db, condition, self.now, self.tz)
        in_python = python_matches(self.db, condition, self.now, self.tz)
        assert in_sql == in_python, f"{raw}: sql {in_sql} != python {in_python}"
        return sorted(self.ids.index(i) for i in in_sql)


def populate(
    db: Database, clock: FrozenClock, *specs: FriendSpec, tz: ZoneInfo = TOKYO
) -> Population:
    return Population(db, clock.now(), tz, write_friends(db, list(specs), clock.now(), tz))


def with_field(name: str, value: Any, **more: Any) -> FriendSpec:
    return FriendSpec(fields={name: value, **more})


# ------------------------------------------------------------------ fields


def test_unset_fields_have_their_catalogue_default(db: Database, clock: FrozenClock) -> None:
    people = populate(db, clock, with_field("points", 5), FriendSpec(), with_field("points", 0))
    assert people.matches({"field": "points", "eq": 0}) == [1, 2]
    assert people.matches({"field": "points", "gt": 0}) == [0]
    assert people.matches({"field": "points", "exists": True}) == [0, 1, 2]
    assert people.matches({"field": "points", "exists": False}) == []
    assert people.matches({"field": "memo", "eq": "-"}) == [0, 1, 2]
    assert people.matches({"field": "vip", "eq": False}) == [0, 1, 2]
    assert people.matches({"field": "vip", "ne": True}) == [0, 1, 2]


def test_missing_values_match_only_ne_and_exists_false(db: Database, clock: FrozenClock) -> None:
    people = populate(db, clock, with_field("age", 40), FriendSpec(), with_field("age", 30))
    assert people.matches({"field": "age", "ne": 40}) == [1, 2]
    assert people.matches({"field": "age", "ne": None}) == [0, 2]
    assert people.matches({"field": "age", "eq": None}) == []
    assert people.matches({"field": "age", "lt": 50}) == [0, 2]
    assert people.matches({"field": "age", "exists": False}) == [1]
    assert people.matches({"field": "age", "in": [30, 31, None]}) == [2]
    assert people.matches({"field": "nowhere", "ne": 1}) == [0, 1, 2]
    assert people.matches({"field": "nowhere", "exists": False}) == [0, 1, 2]


def test_numbers_compare_as_floats_and_booleans_as_one_and_zero(
    db: Database, clock: FrozenClock
) -> None:
    people = populate(
        db, clock, with_field("age", 1), with_field("score", 1.0), with_field("vip", True)
    )
    assert people.matches({"field": "age", "eq": 1.0}) == [0]
    assert people.matches({"field": "score", "eq": 1}) == [1]
    assert people.matches({"field": "age", "eq": True}) == [0]
    assert people.matches({"field": "vip", "eq": 1}) == [2]
    assert people.matches({"field": "vip", "gt": 0.5}) == [2]
    assert people.matches({"field": "age", "between": [0.5, 1]}) == [0]


def test_incomparable_types_never_match_but_differ(db: Database, clock: FrozenClock) -> None:
    people = populate(db, clock, with_field("memo", "40"), with_field("age", 40))
    assert people.matches({"field": "memo", "gt": 30}) == []
    assert people.matches({"field": "memo", "eq": 40}) == []
    assert people.matches({"field": "memo", "ne": 40}) == [0, 1]  # 1 has the default "-"
    assert people.matches({"field": "age", "eq": "40"}) == []
    assert people.matches({"field": "age", "ne": "40"}) == [0, 1]  # 0 has no age
    assert people.matches({"field": "age", "gte": "2026-01-01"}) == []
    assert people.matches({"field": "memo", "in": ["40", 40]}) == [0]


def test_dates_and_datetimes_in_the_account_time_zone(db: Database, clock: FrozenClock) -> None:
    # 08:00 on 1 December in Tokyo is still 30 November in UTC.
    morning = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    specs = [with_field("reserved_at", morning), with_field("birthday", date(2026, 12, 1))]
    people = populate(db, clock, *specs)
    assert people.matches({"field": "reserved_at", "gte": "2026-12-01"}) == [0]
    assert people.matches({"field": "reserved_at", "eq": date(2026, 12, 1)}) == [0]
    assert people.matches({"field": "reserved_at", "lt": "2026-12-01 08:00"}) == []
    assert people.matches({"field": "reserved_at", "lte": "2026-12-01 08:00"}) == [0]
    assert people.matches({"field": "reserved_at", "eq": "2026-11-30T23:00Z"}) == [0]
    assert people.matches({"field": "reserved_at", "between": ["2026-12-01", "2026-12-01"]}) == [0]
    assert people.matches({"field": "birthday", "eq": "2026-12-01"}) == [1]
    # A date-time operand is compared with a date by its own calendar date.
    assert people.matches({"field": "birthday", "eq": "2026-12-01T23:30+09:00"}) == [1]
    assert people.matches({"field": "birthday", "between": ["2026-11-01", "2026-12-31"]}) == [1]
    assert people.matches({"field": "birthday", "gt": 20261130}) == []


def test_the_same_instant_is_another_day_in_another_zone(db: Database, clock: FrozenClock) -> None:
    morning = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    people = populate(db, clock, with_field("reserved_at", morning), tz=NEW_YORK)
    assert people.matches({"field": "reserved_at", "eq": "2026-11-30"}) == [0]
    assert people.matches({"field": "reserved_at", "gte": "2026-12-01"}) == []


def test_wall_times_seen_twice_or_never_in_new_york(db: Database, clock: FrozenClock) -> None:
    instants = [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # 01:00 EST: clocks went back
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST, the second time
        datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # 01:59 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT: 02:xx never happens
    ]
    people = populate(db, clock, *(with_field("reserved_at", at) for at in instants), tz=NEW_YORK)
    assert people.matches({"field": "reserved_at", "eq": "2026-11-01 01:30"}) == [0, 2]
    assert people.matches({"field": "reserved_at", "lt": "2026-11-01 01:30"}) == [1, 3, 4]
    assert people.matches({"field": "reserved_at", "gt": "2026-11-01 01:00"}) == [0, 2]
    assert people.matches({"field": "reserved_at", "eq": "2026-03-08 02:30"}) == []
    assert people.matches({"field": "reserved_at", "ne": "2026-03-08 02:30"}) == [0, 1, 2, 3, 4]
    assert people.matches({"field": "reserved_at", "gte": "2026-03-08 02:30"}) == [0, 1, 2, 4]
    assert people.matches({"field": "reserved_at", "eq": "2026-11-01"}) == [0, 1, 2]
    window = {"field": "reserved_at", "between": ["2026-11-01 01:15", "2026-11-01 01:45"]}
    assert people.matches(window) == [0, 2]
    mixed = {"field": "reserved_at", "between": ["2026-11-01 00:30", "2026-11-02T00:30Z"]}
    assert people.matches(mixed) == []  # naive with aware: Python cannot compare them


def test_a_field_stored_with_another_type_compares_by_its_stored_type(
    db: Database, clock: FrozenClock
) -> None:
    people = populate(
        db,
        clock,
        FriendSpec(stray=("legacy", "text", "40")),
        FriendSpec(stray=("legacy", "integer", 40)),
    )
    assert people.matches({"field": "legacy", "eq": 40}) == [1]
    assert people.matches({"field": "legacy", "eq": "40"}) == [0]
    assert people.matches({"field": "legacy", "exists": True}) == [0, 1]


# ------------------------------------------------------------------ other conditions


def test_answered_looks_at_the_latest_answer(db: Database, clock: FrozenClock) -> None:
    people = populate(
        db,
        clock,
        FriendSpec(answers=[("welcome", "q1", "yes"), ("welcome", "q1", "no")]),
        FriendSpec(answers=[("welcome", "q1", 1)]),
        FriendSpec(answers=[("welcome", "q1", True), ("other", "q1", "yes")]),
        FriendSpec(answers=[("welcome", "q1", "1"), ("welcome", "q2", None)]),
    )
    q1 = {"flow": "welcome", "step": "q1"}
    assert people.matches({"answered": q1}) == [0, 1, 2, 3]
    assert people.matches({"answered": q1 | {"value": "yes"}}) == []
    assert people.matches({"answered": q1 | {"value": "no"}}) == [0]
    assert people.matches({"answered": q1 | {"value": 1}}) == [1, 2]  # 1 == True in Python
    assert people.matches({"answered": q1 | {"value": True}}) == [1, 2]
    assert people.matches({"answered": q1 | {"value": 1.0}}) == [1, 2]
    assert people.matches({"answered": q1 | {"value": "1"}}) == [3]
    assert people.matches({"answered": {"flow": "welcome", "step": "q2"}}) == [3]
    assert people.matches({"answered": {"flow": "other", "step": "q1", "value": "yes"}}) == [2]


def test_followed_within_and_clicked_within_count_the_boundary(
    db: Database, clock: FrozenClock
) -> None:
    now = clock.now()
    day = timedelta(days=1)
    people = populate(
        db,
        clock,
        FriendSpec(followed_at=now - 7 * day, clicks=[("coupon", now - 7 * day)]),
        FriendSpec(followed_at=now - 7 * day - timedelta(seconds=1)),
        FriendSpec(clicks=[("coupon", now - 10 * day), ("coupon", now - day)]),
        FriendSpec(clicks=[("menu", now)]),
    )
    assert people.matches({"followed_within": "7d"}) == [0]
    assert people.matches({"clicked": "coupon"}) == [0, 2]
    assert people.matches({"clicked": "coupon", "within": "7d"}) == [0, 2]
    assert people.matches({"clicked": "coupon", "within": "1d"}) == [2]
    assert people.matches({"clicked": "coupon", "within": "1h"}) == []
    assert people.matches({"clicked": "menu", "within": "1h"}) == [3]


def test_routes_audiences_and_sequences(db: Database, clock: FrozenClock) -> None:
    people = populate(
        db,
        clock,
        FriendSpec(route="qr", audiences=["vip"], enrolments={"s1": "active"}),
        FriendSpec(route="ad", audiences=["vip", "old"], enrolments={"s1": "completed"}),
        FriendSpec(enrolments={"s1": "stopped", "s2": "active"}),
    )
    assert people.matches({"route": "qr"}) == [0]
    assert people.matches({"not": {"route": "qr"}}) == [1, 2]
    assert people.matches({"audience": "vip"}) == [0, 1]
    assert people.matches({"audience": "old"}) == [1]
    assert people.matches({"audience": "nobody-uploaded-this"}) == []
    assert people.matches({"in_sequence": "s1"}) == [0]
    assert people.matches({"in_sequence": "s2"}) == [2]
    assert people.matches({"any": [{"tag": "a"}, {"not": {"in_sequence": "s9"}}]}) == [0, 1, 2]


def test_friend_record_answers_clicks_and_audiences(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    [friend_id] = write_friends(
        db,
        [FriendSpec(clicks=[("coupon", now - timedelta(hours=2))], audiences=["old"])],
        now,
        TOKYO,
    )
    with db.read() as session:
        friend = session.get(Friend, friend_id)
        assert friend is not None
        record = FriendRecord(session, friend, CATALOGUE, now, TOKYO)
        assert record.clicked("coupon")
        assert not record.clicked("coupon", timedelta(hours=1))
        assert not record.clicked("menu")
        record.note_click("coupon", now)
        assert record.clicked("coupon", timedelta(hours=1))
        assert record.audiences == {"old"}


# ------------------------------------------------------------------ counting and selecting


def test_blocked_friends_count_only_when_asked(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    people = populate(
        db,
        clock,
        FriendSpec(tags=["a"], followed_at=now),
        FriendSpec(tags=["a"], status="blocked"),
        FriendSpec(tags=["a"]),
        FriendSpec(),
    )
    condition = ADAPTER.validate_python({"tag": "a"})
    options: dict[str, Any] = {"catalogue": CATALOGUE, "tz": TOKYO, "now": now}
    with db.read() as session:
        assert count_matching(session, condition, **options) == 2
        assert count_matching(session, condition, include_blocked=True, **options) == 3
        ids = set(session.scalars(matching_ids_select(condition, **options)))
        assert ids == {people.ids[0], people.ids[2]}
        sample = sample_matching(session, condition, limit=1, **options)
        assert sample == [
            {
                "line_user_id": f"U{0:032x}",
                "display_name": "friend 0",
                "status": "following",
                "followed_at": "2026-11-23T01:00:00Z",
            }
        ]
        everyone = sample_matching(session, condition, include_blocked=True, **options)
        assert [row["status"] for row in everyone] == ["following", "blocked", "following"]
    with db.engine.connect() as connection:  # a bare Connection works too
        assert count_matching(connection, condition, **options) == 2


def test_one_query_counts_everyone(db: Database, clock: FrozenClock) -> None:
    populate(db, clock, *(FriendSpec(tags=["a"], fields={"age": n}) for n in range(20)))
    condition = ADAPTER.validate_python(
        {
            "all": [
                {"tag": "a"},
                {"field": "age", "gte": 10},
                {"not": {"answered": {"flow": "welcome", "step": "q1", "value": "yes"}}},
                {"any": [{"clicked": "coupon", "within": "7d"}, {"field": "points", "eq": 0}]},
                {"not": {"audience": "vip"}},
            ]
        }
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read() as session:
            total = count_matching(
                session, condition, catalogue=CATALOGUE, tz=TOKYO, now=clock.now()
            )
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert total == 10
    assert len([s for s in statements if "friends" in s]) == 1


def test_the_clause_is_never_null_under_not(db: Database, clock: FrozenClock) -> None:
    # Friends without a route or a follow date: NOT must still see false, not NULL.
    people = populate(db, clock, FriendSpec(), FriendSpec(route="qr", followed_at=clock.now()))
    assert people.matches({"not": {"route": "ad"}}) == [0, 1]
    assert people.matches({"not": {"followed_within": "1d"}}) == [0]
    clause = segment_clause(
        ADAPTER.validate_python({"not": {"route": "ad"}}),
        catalogue=CATALOGUE,
        tz=TOKYO,
        now=clock.now(),
    )
    with db.read() as session:
        values = session.scalars(select(clause).select_from(Friend)).all()
    assert [bool(v) for v in values] == [True, True]
    assert None not in values


# ------------------------------------------------------------------ resolve


def test_resolve_takes_models_mappings_and_json() -> None:
    model = TagCondition(tag="a")
    assert resolve(model, CATALOGUE) is model
    assert resolve({"tag": "a"}, CATALOGUE) == model
    assert resolve('{"not": {"tag": "a"}}', CATALOGUE) == ADAPTER.validate_python(
        {"not": {"tag": "a"}}
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tga": "a"}, "not a valid condition"),
        ({"field": "age", "gte": 1, "lte": 2}, "exactly one operator"),
        ({"all": []}, "not a valid condition"),
        ('{"tag": ', "not valid JSON"),
        (42, "not int"),
        (["tag", "a"], "not list"),
        ("winter", "unknown segment 'winter'"),
        ("", "not empty text"),
    ],
)
def test_resolve_says_what_is_wrong(bad: Any, message: str) -> None:
    with pytest.raises(SegmentError, match=message):
        resolve(bad, CATALOGUE)


def test_resolve_finds_named_segments() -> None:
    document = SimpleNamespace(segment=ADAPTER.validate_python({"tag": "b"}))
    catalogue = SimpleNamespace(
        segments={
            "women": {"tag": "女性"},
            "members": document,
            "alias": "women",
            "loop": "loop",
        }
    )
    assert resolve("women", catalogue) == TagCondition(tag="女性")
    assert resolve(" members ", catalogue) == TagCondition(tag="b")
    assert resolve("alias", catalogue) == TagCondition(tag="女性")
    with pytest.raises(SegmentError, match="refers to itself"):
        resolve("loop", catalogue)
    with pytest.raises(SegmentError, match=r"unknown segment 'men' \(known: alias, loop"):
        resolve("men", catalogue)


def test_segments_named_inside_conditions(db: Database, clock: FrozenClock) -> None:
    """`{segment: NAME}` means the named segment's condition, in SQL and in Python alike,
    at any depth and through segments that name segments."""
    catalogue = replace(
        CATALOGUE,
        segments={
            "has_a": SegmentDoc(segment="has_a", condition=ADAPTER.validate_python({"tag": "a"})),
            "a_not_b": SegmentDoc(
                segment="a_not_b",
                condition=ADAPTER.validate_python(
                    {"all": [{"segment": "has_a"}, {"not": {"tag": "b"}}]}
                ),
            ),
        },
    )
    now = clock.now()
    ids = write_friends(
        db,
        [FriendSpec(tags=["a"]), FriendSpec(tags=["a", "b"]), FriendSpec(tags=["c"])],
        now,
        TOKYO,
    )
    for raw, expected in [
        ({"segment": "has_a"}, [0, 1]),
        ({"segment": "a_not_b"}, [0]),
        ({"any": [{"segment": "a_not_b"}, {"tag": "c"}]}, [0, 2]),
        ({"not": {"segment": "a_not_b"}}, [1, 2]),
    ]:
        condition = ADAPTER.validate_python(raw)
        in_sql = sql_matches(db, condition, now, TOKYO, catalogue)
        assert in_sql == python_matches(db, condition, now, TOKYO, catalogue), raw
        assert sorted(ids.index(i) for i in in_sql) == expected, raw
    assert resolve({"all": [{"segment": "a_not_b"}]}, catalogue) is not None
    with pytest.raises(SegmentError, match="unknown segment 'nope'"):
        resolve({"not": {"segment": "nope"}}, catalogue)


def test_a_segment_naming_itself_is_an_error() -> None:
    loop = SimpleNamespace(
        segments={
            "x": SimpleNamespace(condition=ADAPTER.validate_python({"segment": "y"})),
            "y": SimpleNamespace(condition=ADAPTER.validate_python({"any": [{"segment": "x"}]})),
        }
    )
    with pytest.raises(SegmentError, match="refers to itself"):
        resolve({"segment": "x"}, loop)


def test_alternatives_on_one_tag_table_or_field_are_one_exists(
    db: Database, clock: FrozenClock
) -> None:
    """`any` over several tags, or several values of one field, is merged into one EXISTS
    (a semi-join for the planner); alternatives whose default matches stay apart."""
    people = populate(
        db,
        clock,
        FriendSpec(tags=["a"], fields={"gender": "female", "points": 5}),
        FriendSpec(tags=["b"], fields={"gender": "male", "memo": "x"}),
        FriendSpec(tags=["c"], fields={"age": 40}),
        FriendSpec(),
    )
    assert people.matches({"any": [{"tag": "a"}, {"tag": "b"}]}) == [0, 1]
    assert people.matches({"any": [{"tag": "a"}, {"tag": "nobody-has-it"}]}) == [0]
    assert people.matches({"any": [{"tag": "nobody"}, {"tag": "has-it"}]}) == []
    assert people.matches(
        {"any": [{"field": "gender", "eq": "female"}, {"field": "gender", "eq": "male"}]}
    ) == [0, 1]
    assert people.matches(
        {"any": [{"field": "points", "eq": 5}, {"field": "points", "eq": 0}, {"tag": "c"}]}
    ) == [0, 1, 2, 3]  # points defaults to 0: the unset ones match
    assert people.matches(
        {"any": [{"field": "memo", "eq": "x"}, {"field": "memo", "ne": "-"}]}
    ) == [1]
    assert people.matches(
        {"any": [{"field": "age", "gte": 40}, {"field": "age", "lt": 10}, {"tag": "a"}]}
    ) == [0, 2]
    assert people.matches(
        {"not": {"any": [{"tag": "a"}, {"tag": "b"}, {"field": "age", "exists": True}]}}
    ) == [3]
    condition = ADAPTER.validate_python(
        {
            "any": [
                {"tag": "a"},
                {"tag": "b"},
                {"field": "gender", "eq": "female"},
                {"field": "gender", "eq": "male"},
            ]
        }
    )
    sql = str(segment_clause(condition, catalogue=CATALOGUE, tz=TOKYO, now=clock.now()))
    assert sql.count("EXISTS") == 2  # one for the tags, one for the field
