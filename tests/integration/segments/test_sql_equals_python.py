"""The SQL segment matches exactly the friends the Python evaluator matches, on SQLite and on
PostgreSQL:

- every field comparison (each operator with each operand of a pool that mixes every type)
  against a population holding a stored value of every type, in two time zones;
- random nested conditions over random friends (tags, fields with and without defaults,
  answers given more than once, clicks, audiences, routes, enrolments, blocked friends).

Values come from small pools so that equalities, boundaries (a click exactly `within` ago, a
date-time at local midnight) and daylight-saving edges (a wall time New York sees twice or
never) come up often; operands mix every type so that incomparable pairs do too."""

from __future__ import annotations

import json
import time as timer
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from bot.catalogue.models import Condition
from bot.clock import FrozenClock
from bot.engine.conditions import evaluate
from bot.engine.friend_record import FriendRecord
from bot.segments.compile import FRIENDS, segment_clause
from bot.segments.queries import count_matching
from storage.db import Database
from storage.models import Friend
from tests.integration.segments import CATALOGUE, FriendSpec, clear, write_friends

ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)
ZONES = ("Asia/Tokyo", "America/New_York")

# ------------------------------------------------------------------ value pools

INSTANTS = [
    datetime(2026, 11, 22, 14, 59, 59, tzinfo=UTC),  # Tokyo: 23:59:59 on the 22nd
    datetime(2026, 11, 22, 15, 0, tzinfo=UTC),  # Tokyo: midnight of the 23rd
    datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 0, tzinfo=UTC),  # Tokyo: 1 December 08:00
    datetime(2026, 11, 1, 4, 0, tzinfo=UTC),  # New York: midnight, 1 November (EDT)
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # New York: 01:30 EDT
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York: 01:00 EST (clocks went back)
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # New York: 01:30 EST, the second time
    datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC),  # New York: 01:59:59 EST
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York: 03:00 EDT (02:xx skipped)
]
DATES = [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 1), date(2026, 3, 8)]
NAIVE = [
    datetime(2026, 11, 1, 1, 30),  # New York: twice
    datetime(2026, 11, 1, 1, 0),
    datetime(2026, 11, 1, 0, 0),
    datetime(2026, 3, 8, 2, 30),  # New York: never
    datetime(2026, 3, 8, 3, 0),
    datetime(2026, 11, 23, 0, 0),
    datetime(2026, 11, 22, 23, 59, 59),
]
AWARE = [
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 11, 22, 15, 0, tzinfo=UTC),
    datetime.fromisoformat("2026-11-23T00:00+09:00"),
    datetime.fromisoformat("2026-11-01T01:30-04:00"),
]
TIME_TEXT = [
    "2026-11-23",
    "2026-11-01",
    "2026-11-01 01:30",
    "2026-03-08T02:30",
    "2026-11-23T00:00+09:00",
    "20261123",
]
TEXTS = ["", "a", "abc", "B", "female", "male", "1", "true", "あ", "-", "2026-11-23"]
INTEGERS = [-1, 0, 1, 2, 30, 40]
NUMBERS = [*INTEGERS, 0.5, 1.0, 2.5]
ANSWER_VALUES = ["yes", "no", "1", 1, 0, 1.0, 1.5, True, False, None]

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "age": st.sampled_from(INTEGERS),
    "points": st.sampled_from([0, 1, 5]),
    "score": st.sampled_from([0.5, 1.0, 2.5, -3.0, 0.0]),
    "vip": st.booleans(),
    "gender": st.sampled_from(["female", "male", "other"]),
    "memo": st.sampled_from(TEXTS),
    "birthday": st.sampled_from(DATES),
    "reserved_at": st.sampled_from(INSTANTS),
}
STRAYS = [
    ("integer", 1),
    ("integer", 40),
    ("number", 0.5),
    ("boolean", True),
    ("text", "a"),
    ("text", "1"),
    ("choice", "female"),
    ("date", date(2026, 11, 23)),
    ("datetime", INSTANTS[1]),
    ("datetime", INSTANTS[6]),
]

# ------------------------------------------------------------------ friends


def _ago(now: datetime, offsets: list[timedelta]) -> st.SearchStrategy[datetime]:
    return st.sampled_from([now - offset for offset in offsets])


def friends(now: datetime) -> st.SearchStrategy[FriendSpec]:
    h, d, s = timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)
    return st.builds(
        FriendSpec,
        status=st.sampled_from(["following", "following", "following", "blocked"]),
        followed_at=st.none() | _ago(now, [timedelta(0), h, d, d + s, 7 * d, 8 * d, 40 * d]),
        route=st.sampled_from([None, "qr", "ad"]),
        tags=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
        fields=st.fixed_dictionaries(
            {}, optional={name: values for name, values in FIELD_VALUES.items()}
        ),
        stray=st.none() | st.sampled_from(STRAYS).map(lambda kv: ("legacy", *kv)),
        clicks=st.lists(
            st.tuples(
                st.sampled_from(["coupon", "menu"]),
                _ago(now, [timedelta(0), h, h + s, d, 7 * d, 7 * d + s, 10 * d]),
            ),
            max_size=3,
        ),
        audiences=st.lists(st.sampled_from(["vip", "old"]), unique=True, max_size=2),
        enrolments=st.fixed_dictionaries(
            {},
            optional={
                "s1": st.sampled_from(["active", "completed", "stopped"]),
                "s2": st.sampled_from(["active", "completed", "stopped"]),
            },
        ),
        answers=st.lists(
            st.tuples(
                st.sampled_from(["welcome", "other"]),
                st.sampled_from(["q1", "q2"]),
                st.sampled_from(ANSWER_VALUES),
            ),
            max_size=4,
        ),
    )


# ------------------------------------------------------------------ conditions

NUMERIC = [*NUMBERS, True, False]
TIMELY = [*DATES, *NAIVE, *AWARE, *TIME_TEXT]
EVERYTHING = [*NUMERIC, None, *TEXTS, *TIMELY]
# Operands a field of each type is mostly compared with (scalars: what `eq`/`in` take as text).
TYPED: dict[str, tuple[list[Any], list[Any]]] = {  # type → (scalars, ordered)
    "integer": (NUMERIC, NUMERIC),
    "number": (NUMERIC, NUMERIC),
    "boolean": ([True, False, 0, 1, 1.0, "true"], [True, False, 0, 1, 0.5]),
    "choice": (TEXTS, TEXTS),
    "text": (TEXTS, TEXTS),
    "date": ([*DATES, *TIME_TEXT], [*DATES, *NAIVE, *AWARE, *TIME_TEXT]),
    "datetime": ([*DATES, *NAIVE, *AWARE, *TIME_TEXT], [*DATES, *NAIVE, *AWARE, *TIME_TEXT]),
}
FIELD_NAMES = [*CATALOGUE.fields, "legacy", "ghost"]


def _pair(values: list[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.tuples(st.sampled_from(values), st.sampled_from(values))


def _between(ordered: list[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    numbers = [v for v in ordered if isinstance(v, int | float)]
    pairs = [_pair(numbers or NUMBERS), _pair(TIME_TEXT[:4])]
    if any(isinstance(v, date) for v in ordered):
        pairs += [_pair(DATES), _pair(NAIVE), _pair(AWARE), _pair([*NAIVE[:2], *AWARE[:2]])]
    return st.one_of(*pairs)


@st.composite
def field_conditions(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly operands of the field's own type (so values meet), sometimes of any type."""
    name = draw(st.sampled_from(FIELD_NAMES))
    definition = CATALOGUE.fields.get(name)
    if definition is not None and draw(st.integers(0, 3)):
        scalars, ordered = TYPED[definition.type]
    else:
        scalars, ordered = EVERYTHING, EVERYTHING
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "between", "exists"]))
    if op in ("eq", "ne"):
        operand = draw(st.sampled_from([*scalars, None]))
    elif op == "in":
        plain = [v for v in scalars if not isinstance(v, date)] or TEXTS
        operand = draw(st.lists(st.sampled_from([*plain, None]), max_size=4))
    elif op == "between":
        operand = draw(_between(ordered))
    elif op == "exists":
        operand = draw(st.sampled_from([True, False, None]))
    else:
        operand = draw(st.sampled_from([*ordered, None]))
    return {"field": name, op: operand}


LEAVES = st.one_of(
    st.sampled_from(["a", "b", "c", "zz"]).map(lambda tag: {"tag": tag}),
    field_conditions(),
    field_conditions(),
    field_conditions(),
    st.sampled_from(["1h", "1d", "7d", "30d"]).map(lambda d: {"followed_within": d}),
    st.builds(
        lambda link, within: {"clicked": link} | ({"within": within} if within else {}),
        st.sampled_from(["coupon", "menu", "nolink"]),
        st.sampled_from([None, "1h", "1d", "7d"]),
    ),
    st.builds(
        lambda flow, step, value: {
            "answered": {"flow": flow, "step": step} | ({} if value is None else {"value": value})
        },
        st.sampled_from(["welcome", "other"]),
        st.sampled_from(["q1", "q2", "q3"]),
        st.sampled_from(ANSWER_VALUES),
    ),
    st.sampled_from(["s1", "s2", "s3"]).map(lambda s: {"in_sequence": s}),
    st.sampled_from(["qr", "ad", "web"]).map(lambda r: {"route": r}),
    st.sampled_from(["vip", "old", "ghost"]).map(lambda a: {"audience": a}),
)


def _valid(raw: dict[str, Any]) -> Condition | None:
    try:
        return ADAPTER.validate_python(raw)
    except ValidationError:
        return None


def conditions(depth: int = 3) -> st.SearchStrategy[Condition]:
    leaf = LEAVES.map(_valid).filter(lambda c: c is not None)
    if depth == 0:
        return leaf  # type: ignore[return-value]
    inner = conditions(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.lists(inner, min_size=1, max_size=3).map(
            lambda cs: ADAPTER.validate_python({"all": cs})
        ),
        st.lists(inner, min_size=1, max_size=3).map(
            lambda cs: ADAPTER.validate_python({"any": cs})
        ),
        inner.map(lambda c: ADAPTER.validate_python({"not": c})),
    )


# ------------------------------------------------------------------ every field comparison

OPERAND_POOL = [*EVERYTHING]
PAIR_POOLS: list[list[Any]] = [NUMERIC, TIMELY]


def every_field_condition(name: str) -> list[Condition]:
    """Each operator with each operand of the pool (those the model accepts)."""
    raw: list[dict[str, Any]] = [{"field": name, "exists": v} for v in (True, False, None)]
    for op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        raw += [{"field": name, op: operand} for operand in [*OPERAND_POOL, None]]
    raw += [
        {"field": name, "in": items}
        for items in ([], [None], [1, "a"], ["female", 40, True], TIME_TEXT, [0.5, "2026-11-01"])
    ]
    raw += [
        {"field": name, "between": [low, high]}
        for pool in PAIR_POOLS
        for low in pool
        for high in pool
    ]
    valid = [_valid(r) for r in raw]
    return [c for c in valid if c is not None]


def test_every_field_comparison_on_every_stored_type(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    stored = [
        *[("integer", v) for v in INTEGERS],
        *[("number", v) for v in (0.5, 1.0, 2.5, -3.0)],
        *[("boolean", v) for v in (True, False)],
        *[("text", v) for v in TEXTS],
        ("choice", "female"),
        ("email", "a@example.com"),
        *[("date", v) for v in DATES],
        *[("datetime", v) for v in INSTANTS],
    ]
    specs = [FriendSpec(stray=("f", kind, value)) for kind, value in stored]
    specs.append(FriendSpec())  # no value at all
    clear(db)
    ids = write_friends(db, specs, now, ZoneInfo(ZONES[0]))
    described = dict(zip(ids, [*stored, "missing"], strict=True))
    conditions = every_field_condition("f")
    assert len(conditions) > 800
    checked = 0
    with db.read() as session:
        friends = session.scalars(select(Friend).order_by(Friend.id)).all()
        for zone in ZONES:
            tz = ZoneInfo(zone)
            records = [FriendRecord(session, f, CATALOGUE, now, tz) for f in friends]
            for start in range(0, len(conditions), 100):
                batch = conditions[start : start + 100]
                columns = [
                    segment_clause(c, catalogue=CATALOGUE, tz=tz, now=now).label(f"c{i}")
                    for i, c in enumerate(batch)
                ]
                rows = session.execute(select(FRIENDS.c.id, *columns).order_by(FRIENDS.c.id)).all()
                for i, condition in enumerate(batch):
                    got = {row[0] for row in rows if row[i + 1]}
                    expected = {r.friend.id for r in records if evaluate(condition, r)}
                    wrong = sorted(map(described.__getitem__, got ^ expected), key=repr)
                    dumped = ADAPTER.dump_json(condition, by_alias=True, exclude_unset=True)
                    assert got == expected, f"{zone}: {dumped.decode()}: differs for {wrong}"
                    checked += 1
    assert checked == 2 * len(conditions)


# ------------------------------------------------------------------ random nested conditions

NOW = FrozenClock().now()
SPENT: dict[str, float] = {}


@settings(
    max_examples=120,
    deadline=None,
    # No shrinking: every try writes a population, so shrinking would outlast the test's
    # timeout; the failure message names the condition and the friends that differ.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    zone=st.sampled_from(ZONES),
    population=st.lists(friends(NOW), min_size=1, max_size=6),
    tests=st.lists(conditions(), min_size=1, max_size=4),
)
def test_sql_segment_equals_python_evaluation(
    db: Database, clock: FrozenClock, zone: str, population: list[FriendSpec], tests: list[Any]
) -> None:
    started = timer.perf_counter()
    now, tz = clock.now(), ZoneInfo(zone)
    assert now == NOW
    clear(db)
    ids = write_friends(db, population, now, tz)
    specs = dict(zip(ids, population, strict=True))
    with db.read() as session:
        records = [
            FriendRecord(session, friend, CATALOGUE, now, tz)
            for friend in session.scalars(select(Friend).order_by(Friend.id))
        ]
        for condition in tests:
            expected = {r.friend.id for r in records if evaluate(condition, r)}
            clause = segment_clause(condition, catalogue=CATALOGUE, tz=tz, now=now)
            got = set(session.scalars(select(FRIENDS.c.id).where(clause)))
            if got != expected:
                dumped = ADAPTER.dump_python(
                    condition, mode="json", by_alias=True, exclude_unset=True
                )
                wrong = {i: specs[i] for i in got ^ expected}
                raise AssertionError(
                    f"{zone}: {json.dumps(dumped, ensure_ascii=False)}\n"
                    f"python {sorted(expected)} != sql {sorted(got)}; differing friends: {wrong}"
                )
            following = sum(1 for i in expected if specs[i].status != "blocked")
            counted = count_matching(session, condition, catalogue=CATALOGUE, tz=tz, now=now)
            assert counted == following
    SPENT[db.dialect] = SPENT.get(db.dialect, 0.0) + timer.perf_counter() - started
