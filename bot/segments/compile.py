"""Segments (セグメント): the condition language compiled to one SQL boolean over `friends`.

`segment_clause` turns a condition into a SQLAlchemy Core expression over the `friends` table,
made of correlated EXISTS subqueries, so one query counts, previews or selects every matching
friend. It means exactly what `bot.engine.conditions.evaluate` means for one friend (a property
test holds the two equal on SQLite and PostgreSQL):

- fields honour the catalogue's defaults for unset fields, and follow `field_matches`: a row
  is compared by the type it was stored with (numbers and booleans as floats, dates and
  date-times in the account's time zone, text as text), incomparable types never match, `ne`
  matches a value of another type, and a missing value matches only `ne` (a non-null
  operand) and `exists: false`;
- `answered` looks at the latest answer (by id) to the step, compared as Python compares the
  JSON value (`1 == 1.0 == true`, `"1" != 1`);
- `clicked`, `in_sequence`, `route`, `audience`, `followed_within` read their own tables.

Naive date-time operands are wall-clock times in the account's zone, exactly as Python
compares local times, daylight saving included (a wall time seen twice matches both instants,
a skipped one none). Assumed, as `FriendRecord.set_field` guarantees: a `field_values` row
always holds a value in the typed column of its type (a cleared field has no row).

Nothing here imports Flask: the CLI, the admin API and the broadcast worker share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Float, Text

from bot.catalogue import Catalogue
from bot.catalogue.models import (
    AllCondition,
    AnsweredCondition,
    AnyCondition,
    AudienceCondition,
    ClickedCondition,
    Condition,
    FieldCondition,
    FollowedWithinCondition,
    InSequenceCondition,
    NotCondition,
    RouteCondition,
    SegmentCondition,
    TagCondition,
    leaves,
)
from bot.engine.conditions import as_time, field_matches
from bot.engine.fields import to_json
from storage.models import (
    Answer,
    Audience,
    AudienceMember,
    FieldValue,
    Friend,
    FriendTag,
    LinkClick,
    SequenceEnrollment,
    Tag,
)

FRIENDS = cast(Table, Friend.__table__)
TAGS = cast(Table, Tag.__table__)
FRIEND_TAGS = cast(Table, FriendTag.__table__)
FIELD_VALUES = cast(Table, FieldValue.__table__)
ANSWERS = cast(Table, Answer.__table__)
ENROLLMENTS = cast(Table, SequenceEnrollment.__table__)
LINK_CLICKS = cast(Table, LinkClick.__table__)
AUDIENCES = cast(Table, Audience.__table__)
AUDIENCE_MEMBERS = cast(Table, AudienceMember.__table__)

CONDITION_TYPES = (
    TagCondition,
    FieldCondition,
    FollowedWithinCondition,
    ClickedCondition,
    AnsweredCondition,
    InSequenceCondition,
    RouteCondition,
    AudienceCondition,
    SegmentCondition,
    AllCondition,
    AnyCondition,
    NotCondition,
)

# Field types by the typed column that holds their value (see fields.typed_columns).
NUMERIC_TYPES = ("integer", "number", "boolean")
TIME_TYPES = ("date", "datetime")

Pred = bool | ColumnElement[bool]  # a constant folds away before it reaches SQL

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


class SegmentError(ValueError):
    """A segment that is not a valid condition nor the name of a known segment."""


# --------------------------------------------------------------------------- public


def segment_clause(
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    tag_ids: Mapping[str, int] | None = None,
) -> ColumnElement[bool]:
    """A boolean over `friends` (never NULL): true for the friends the condition matches.

    With `tag_ids` (from `tag_ids_for`, read in the same transaction) tags are compared by
    id, which lets the planner see how common each tag is; without, by a subquery on name."""
    return _sql(_Compiler(catalogue, tz, now, tag_ids).clause(condition))


def tag_ids_for(
    session_or_connection: Session | Connection, condition: Condition, catalogue: Catalogue
) -> dict[str, int]:
    """The ids of the tags the condition names (segments it names included); a tag nobody
    has ever had has no id, and `{tag: X}` on it is simply false."""
    names = sorted(
        {c.tag for c in _expanded(condition, catalogue, ()) if isinstance(c, TagCondition)}
    )
    if not names:
        return {}
    rows = session_or_connection.execute(
        select(TAGS.c.name, TAGS.c.id).where(TAGS.c.name.in_(names))
    )
    return {name: int(tag_id) for name, tag_id in rows}


def _expanded(condition: Condition, catalogue: Any, seen: tuple[str, ...]) -> Iterator[Condition]:
    """The leaf conditions, named segments expanded (unknown or self-referring: SegmentError)."""
    for leaf in leaves(condition):
        if isinstance(leaf, SegmentCondition):
            inner = _named(leaf.segment, catalogue, seen)
            yield from _expanded(inner, catalogue, (*seen, leaf.segment))
        else:
            yield leaf


def matching_ids_select(
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    tag_ids: Mapping[str, int] | None = None,
) -> Select[Any]:
    """`SELECT friends.id` of the following friends that match (for INSERT ... SELECT)."""
    clause = segment_clause(condition, catalogue=catalogue, tz=tz, now=now, tag_ids=tag_ids)
    return select(FRIENDS.c.id).where(FRIENDS.c.status == "following", clause)


def count_matching(
    session_or_connection: Session | Connection,
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool = False,
) -> int:
    """How many friends match, in one query (blocked friends only if asked)."""
    _without_jit(session_or_connection)
    tag_ids = tag_ids_for(session_or_connection, condition, catalogue)
    where = _where(condition, catalogue, tz, now, include_blocked, tag_ids)
    statement = select(func.count()).select_from(FRIENDS).where(*where)
    return int(session_or_connection.execute(statement).scalar_one())


def sample_matching(
    session_or_connection: Session | Connection,
    condition: Condition,
    *,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool = False,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """A few matching friends (oldest first): LINE user id, display name, status, followed at."""
    tag_ids = tag_ids_for(session_or_connection, condition, catalogue)
    where = _where(condition, catalogue, tz, now, include_blocked, tag_ids)
    statement = (
        select(
            FRIENDS.c.line_user_id,
            FRIENDS.c.display_name,
            FRIENDS.c.status,
            FRIENDS.c.followed_at,
        )
        .where(*where)
        .order_by(FRIENDS.c.id)
        .limit(max(0, int(limit)))
    )
    return [
        {
            "line_user_id": row.line_user_id,
            "display_name": row.display_name,
            "status": row.status,
            "followed_at": to_json(row.followed_at),
        }
        for row in session_or_connection.execute(statement)
    ]


def _without_jit(session_or_connection: Session | Connection) -> None:
    """PostgreSQL compiles a costly-looking query to machine code first (JIT); for a count
    that runs once, that costs ~60 ms at 1,000,000 friends and saves nothing. Off for the
    rest of this transaction only."""
    bind = (
        session_or_connection.get_bind()
        if isinstance(session_or_connection, Session)
        else session_or_connection
    )
    if bind.dialect.name == "postgresql":
        session_or_connection.execute(text("SET LOCAL jit = off"))


def resolve(condition_or_name: Any, catalogue: Any) -> Condition:
    """A condition from a model, its YAML/JSON form (a mapping or JSON text), or the name of
    a segment the catalogue defines; SegmentError says what is wrong."""
    condition = _resolve(condition_or_name, catalogue, seen=())
    for _ in _expanded(condition, catalogue, ()):  # every {segment: …} inside is known, acyclic
        pass
    return condition


# --------------------------------------------------------------------------- resolving


def _resolve(value: Any, catalogue: Any, seen: tuple[str, ...]) -> Condition:
    if isinstance(value, CONDITION_TYPES):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SegmentError(f"the segment is not valid JSON: {exc}") from exc
        else:
            return _named(text, catalogue, seen)
    if not isinstance(value, Mapping):
        raise SegmentError(
            'a segment is a condition (a mapping such as {"tag": "X"}) '
            f"or the name of a segment, not {type(value).__name__}"
        )
    try:
        return _ADAPTER.validate_python(dict(value))
    except ValidationError as exc:
        raise SegmentError(f"not a valid condition: {_describe(exc)}") from exc


def _named(name: str, catalogue: Any, seen: tuple[str, ...]) -> Condition:
    segments = getattr(catalogue, "segments", None)
    if not name:
        raise SegmentError("a segment is a condition or the name of a segment, not empty text")
    if not isinstance(segments, Mapping) or name not in segments:
        known = sorted(segments) if isinstance(segments, Mapping) else []
        hint = f" (known: {', '.join(known)})" if known else ""
        raise SegmentError(f"unknown segment {name!r}{hint}")
    if name in seen:
        raise SegmentError(f"segment {name!r} refers to itself ({' → '.join([*seen, name])})")
    definition = segments[name]
    if not isinstance(definition, (*CONDITION_TYPES, Mapping, str)):
        # A `segment:` document: its condition under one of these keys.
        for attribute in ("condition", "when", "match", "segment"):
            inner = getattr(definition, attribute, None)
            if isinstance(inner, (*CONDITION_TYPES, Mapping)):
                definition = inner
                break
    return _resolve(definition, catalogue, (*seen, name))


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# --------------------------------------------------------------------------- compiling


def _where(
    condition: Condition,
    catalogue: Catalogue,
    tz: ZoneInfo,
    now: datetime,
    include_blocked: bool,
    tag_ids: Mapping[str, int],
) -> list[ColumnElement[bool]]:
    where = [segment_clause(condition, catalogue=catalogue, tz=tz, now=now, tag_ids=tag_ids)]
    if not include_blocked:
        where.append(FRIENDS.c.status != "blocked")
    return where


class _Compiler:
    def __init__(
        self,
        catalogue: Catalogue,
        tz: ZoneInfo,
        now: datetime,
        tag_ids: Mapping[str, int] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.tz = tz
        self.now = now
        self.tag_ids = tag_ids
        self.seen: tuple[str, ...] = ()  # segments being expanded (a cycle is an error)

    def clause(self, condition: Condition) -> Pred:
        if isinstance(condition, SegmentCondition):
            inner = _named(condition.segment, self.catalogue, self.seen)
            outer, self.seen = self.seen, (*self.seen, condition.segment)
            try:
                return self.clause(inner)
            finally:
                self.seen = outer
        if isinstance(condition, AllCondition):
            return _all(*(self.clause(c) for c in condition.all))
        if isinstance(condition, AnyCondition):
            return self.any_of(condition.any)
        if isinstance(condition, NotCondition):
            return _negate(self.clause(condition.not_))
        if isinstance(condition, TagCondition):
            return self.tag(condition.tag)
        if isinstance(condition, FieldCondition):
            return self.field(condition)
        if isinstance(condition, FollowedWithinCondition):
            since = self.now - condition.followed_within
            return and_(FRIENDS.c.followed_at.is_not(None), FRIENDS.c.followed_at >= since)
        if isinstance(condition, ClickedCondition):
            return self.clicked(condition)
        if isinstance(condition, AnsweredCondition):
            return self.answered(condition)
        if isinstance(condition, InSequenceCondition):
            e = ENROLLMENTS.alias("e")
            return (
                select(e.c.id)
                .where(
                    e.c.friend_id == FRIENDS.c.id,
                    e.c.sequence == condition.in_sequence,
                    e.c.status == "active",
                )
                .exists()
            )
        if isinstance(condition, RouteCondition):
            return and_(FRIENDS.c.route.is_not(None), FRIENDS.c.route == condition.route)
        if isinstance(condition, AudienceCondition):
            m = AUDIENCE_MEMBERS.alias("m")
            audience_id = (
                select(AUDIENCES.c.id)
                .where(AUDIENCES.c.name == condition.audience)
                .scalar_subquery()
            )
            return (
                select(m.c.audience_id)
                .where(m.c.audience_id == audience_id, m.c.line_user_id == FRIENDS.c.line_user_id)
                .exists()
            )
        raise TypeError(f"unknown condition {type(condition).__name__}")

    def any_of(self, conditions: list[Condition]) -> Pred:
        """`any`, with alternatives on one table merged into one EXISTS: `any: [tag A, tag B]`
        is one EXISTS over both tag ids, `any: [prefecture eq 東京都, prefecture eq 神奈川県]`
        one EXISTS over that field's rows. The planner can run a single EXISTS as a semi-join
        over the index; an OR of several it can only try friend by friend (2× at 1M)."""
        tags = [c.tag for c in conditions if isinstance(c, TagCondition)]
        by_field: dict[str, list[FieldCondition]] = {}
        for c in conditions:
            if isinstance(c, FieldCondition) and not self._unset_matches(c):
                by_field.setdefault(c.field, []).append(c)
        merged = {id(c) for group in by_field.values() if len(group) > 1 for c in group}
        preds: list[Pred] = []
        if len(tags) > 1:
            preds.append(self.tags(tags))
        for name, group in by_field.items():
            if len(group) > 1:
                fv = FIELD_VALUES.alias("fv")
                stored = _any(*(_stored_matches(c, fv, self.tz) for c in group))
                preds.append(self._field_row(fv, name, stored))
        for c in conditions:
            if (isinstance(c, TagCondition) and len(tags) > 1) or id(c) in merged:
                continue
            preds.append(self.clause(c))
        return _any(*preds)

    def tag(self, name: str) -> Pred:
        return self.tags([name])

    def tags(self, names: list[str]) -> Pred:
        """The friend has any of the tags."""
        ft = FRIEND_TAGS.alias("ft")
        match: ColumnElement[bool]
        if self.tag_ids is None:
            ids = select(TAGS.c.id).where(TAGS.c.name.in_(names))
            match = (
                ft.c.tag_id == ids.scalar_subquery() if len(names) == 1 else ft.c.tag_id.in_(ids)
            )
        else:
            known = sorted({self.tag_ids[n] for n in names if n in self.tag_ids})
            if not known:
                return False  # no friend has ever had any of them
            match = ft.c.tag_id == known[0] if len(known) == 1 else ft.c.tag_id.in_(known)
        return select(ft.c.friend_id).where(ft.c.friend_id == FRIENDS.c.id, match).exists()

    def clicked(self, condition: ClickedCondition) -> Pred:
        c = LINK_CLICKS.alias("c")
        where = [c.c.link == condition.clicked, c.c.friend_id == FRIENDS.c.id]
        if condition.within is not None:
            where.append(c.c.clicked_at >= self.now - condition.within)
        return select(c.c.id).where(*where).exists()

    def answered(self, condition: AnsweredCondition) -> Pred:
        """The latest answer (by id) to the step, as `FriendRecord.answers` keeps it."""
        spec = condition.answered
        a = ANSWERS.alias("a")
        mine = [a.c.friend_id == FRIENDS.c.id, a.c.flow == spec.flow, a.c.step == spec.step]
        if spec.value is None:
            return select(a.c.id).where(*mine).exists()
        matches = _json_equals(a.c.value, spec.value)
        if isinstance(matches, bool):
            return matches
        b = ANSWERS.alias("b")
        latest = (
            select(func.max(b.c.id))
            .where(b.c.friend_id == a.c.friend_id, b.c.flow == a.c.flow, b.c.step == a.c.step)
            .scalar_subquery()
        )
        return select(a.c.id).where(*mine, a.c.id == latest, matches).exists()

    def _unset_matches(self, condition: FieldCondition) -> bool:
        """Whether a friend without a stored value (so with the default) matches."""
        definition = self.catalogue.fields.get(condition.field)
        default = definition.default if definition is not None else None
        return field_matches(condition, default, self.tz)

    def _field_row(self, fv: Any, name: str, *extra: Pred) -> Pred:
        """The friend has a stored value of the field (satisfying `extra`)."""
        where = [p for p in extra if not isinstance(p, bool)]
        if any(p is False for p in extra):
            return False
        return (
            select(fv.c.friend_id)
            .where(fv.c.friend_id == FRIENDS.c.id, fv.c.name == name, *where)
            .exists()
        )

    def field(self, condition: FieldCondition) -> Pred:
        """Stored rows compare by their type; a friend without a row has the default."""
        unset_matches = self._unset_matches(condition)
        fv = FIELD_VALUES.alias("fv")
        stored = _stored_matches(condition, fv, self.tz)
        if stored is True:
            return True if unset_matches else self._field_row(fv, condition.field)
        has = self._field_row(fv, condition.field, stored)
        return _any(has, _negate(self._field_row(fv, condition.field))) if unset_matches else has


# --------------------------------------------------------------------------- fields


def _stored_matches(condition: FieldCondition, fv: Any, tz: ZoneInfo) -> Pred:
    """`field_matches` for a stored row, whatever its type (rows always hold a value)."""
    op, operand = condition.operator, condition.operand
    if op == "exists":
        return bool(operand)
    kinds: list[tuple[ColumnElement[bool], Pred]] = [
        (fv.c.type.in_(NUMERIC_TYPES), _Numeric(fv.c.value_number).match(op, operand)),
        (fv.c.type == "date", _Date(fv.c.value_datetime).match(op, operand)),
        (fv.c.type == "datetime", _DateTime(fv.c.value_datetime, tz).match(op, operand)),
        (
            fv.c.type.not_in(NUMERIC_TYPES + TIME_TYPES),
            _Text(fv.c.value_text).match(op, operand),
        ),
    ]
    if all(pred is True for _, pred in kinds):
        return True
    return _any(*(_all(is_kind, pred) for is_kind, pred in kinds))


class _Kind:
    """One way a value is stored; `compare` gives the SQL of `value <op> operand` as
    `_comparable` sees it, or False where Python's comparison is False or a TypeError."""

    def match(self, op: str, operand: Any) -> Pred:
        if op == "ne":
            return _negate(self.compare("eq", operand))
        if op == "in":
            if not isinstance(operand, list | tuple):
                return False
            return _any(*(self.compare("eq", item) for item in operand))
        if op == "between":
            if not isinstance(operand, list | tuple) or len(operand) != 2:
                return False
            return self.between(operand[0], operand[1])
        if op in ("eq", "gt", "gte", "lt", "lte"):
            return self.compare(op, operand)
        raise ValueError(f"unknown operator {op}")

    def compare(self, op: str, operand: Any) -> Pred:
        raise NotImplementedError

    def between(self, low: Any, high: Any) -> Pred:
        raise NotImplementedError


class _Numeric(_Kind):
    """integer, number, boolean: `value_number` (booleans as 1/0, as Python compares them)."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        if isinstance(operand, int | float):  # bool is an int
            return _compare(self.column, op, float(operand))
        return False

    def between(self, low: Any, high: Any) -> Pred:
        if isinstance(low, int | float) and isinstance(high, int | float):
            return _all(self.compare("gte", low), self.compare("lte", high))
        return False


class _Text(_Kind):
    """text, choice, email, phone: `value_text`, ordered by code point as Python orders it."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        if not isinstance(operand, str):
            return False
        if op == "eq":
            return self.column == operand
        return _compare(_CodePointOrder(self.column), op, operand)

    def between(self, low: Any, high: Any) -> Pred:
        if isinstance(low, str) and isinstance(high, str):
            return _all(self.compare("gte", low), self.compare("lte", high))
        return False


def _as_date(operand: Any) -> date | None:
    """What a date value is compared with: a date, or a date-time's own calendar date."""
    value = as_time(operand)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


class _Date(_Kind):
    """date: `value_datetime` holds midnight UTC of the date, so instants order like dates."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def compare(self, op: str, operand: Any) -> Pred:
        day = _as_date(operand)
        if day is None:
            return False
        return _compare(self.column, op, datetime(day.year, day.month, day.day, tzinfo=UTC))

    def between(self, low: Any, high: Any) -> Pred:
        if _as_date(low) is None or _as_date(high) is None:
            return False
        return _all(self.compare("gte", low), self.compare("lte", high))


class _DateTime(_Kind):
    """datetime: `value_datetime` (UTC). An aware operand is an instant; a naive one is a
    wall-clock time in the account's zone; a date is the local calendar date."""

    def __init__(self, column: ColumnElement[Any], tz: ZoneInfo) -> None:
        self.column = column
        self.tz = tz

    @staticmethod
    def shape(operand: Any) -> str | None:
        value = as_time(operand)
        if isinstance(value, datetime):
            return "naive" if value.tzinfo is None else "aware"
        if isinstance(value, date):
            return "date"
        return None

    def compare(self, op: str, operand: Any) -> Pred:
        value = as_time(operand)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return _wall(self.column, op, value, self.tz)
            return _compare(self.column, op, value)
        if isinstance(value, date):
            return _local_date(self.column, op, value, self.tz)
        return False

    def between(self, low: Any, high: Any) -> Pred:
        # Python compares the value brought to the low end's shape with the high end:
        # mixed shapes (naive with aware, date with date-time) raise TypeError → False.
        shape = self.shape(low)
        if shape is None or shape != self.shape(high):
            return False
        return _all(self.compare("gte", low), self.compare("lte", high))


def _local_date(column: ColumnElement[Any], op: str, day: date, tz: ZoneInfo) -> Pred:
    """The instant's calendar date in `tz` compared with `day`, as wall-clock bounds."""
    start = datetime.combine(day, time())
    try:
        end: datetime | None = start + timedelta(days=1)
    except OverflowError:
        end = None
    if op == "eq":
        return _all(_wall(column, "gte", start, tz), _wall(column, "lt", end, tz))
    if op == "gt":
        return _wall(column, "gte", end, tz)
    if op == "gte":
        return _wall(column, "gte", start, tz)
    if op == "lt":
        return _wall(column, "lt", start, tz)
    if op == "lte":
        return _wall(column, "lt", end, tz)
    raise ValueError(f"unknown operator {op}")


def _wall(column: ColumnElement[Any], op: str, naive: datetime | None, tz: ZoneInfo) -> Pred:
    """Instants whose wall-clock time in `tz` compares `op` with the naive `naive`.

    Exact in every zone: a wall time repeated when clocks go back (01:30 twice) matches two
    instants, and between them the clock reads earlier; one skipped when they go forward
    (02:30) matches none, and the clock jumps past it at the transition. `naive=None` is a
    moment later than any stored one."""
    if naive is None:
        return op in ("lt", "lte")
    try:
        first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    except OverflowError:  # at the ends of datetime's range
        later = naive.year > 5000
        return op in ("lt", "lte") if later else op in ("gt", "gte")
    if first == second:
        return _compare(column, op, first)
    if first < second:  # repeated: [first, switch) reads ≥ naive, [switch, second) reads less
        switch = _transition(first, second, tz)
        if op == "eq":
            return or_(column == first, column == second)
        if op == "gt":
            return or_(and_(column > first, column < switch), column > second)
        if op == "gte":
            return or_(and_(column >= first, column < switch), column >= second)
        if op == "lt":
            return or_(column < first, and_(column >= switch, column < second))
        if op == "lte":
            return or_(column <= first, and_(column >= switch, column <= second))
        raise ValueError(f"unknown operator {op}")
    switch = _transition(second, first, tz)  # skipped: before the switch reads earlier
    if op == "eq":
        return False
    if op in ("gt", "gte"):
        return column >= switch
    if op in ("lt", "lte"):
        return column < switch
    raise ValueError(f"unknown operator {op}")


def _transition(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose UTC offset in `tz` differs from low's."""
    before = low.astimezone(tz).utcoffset()
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def _compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return column == value
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    raise ValueError(f"unknown operator {op}")


# --------------------------------------------------------------------------- answers (JSON)


def _json_equals(column: ColumnElement[Any], value: Any) -> Pred:
    """`stored == value` as Python compares a JSON-loaded answer with a scalar."""
    if isinstance(value, str):
        return _JsonString(column) == value
    if isinstance(value, int | float):  # numbers and booleans: 1 == 1.0 == True
        return _JsonNumber(column) == float(value)
    return False


class _JsonString(FunctionElement[str]):
    """A JSON value's text if it is a JSON string, else NULL."""

    type = Text()
    inherit_cache = True
    name = "json_string"


class _JsonNumber(FunctionElement[float]):
    """A JSON number, or a boolean as 1/0 (Python's `True == 1`), else NULL."""

    type = Float()
    inherit_cache = True
    name = "json_number"


class _CodePointOrder(FunctionElement[str]):
    """Text ordered by code point, as Python orders str (PostgreSQL: the "C" collation)."""

    type = Text()
    inherit_cache = True
    name = "code_point_order"


def _argument(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_JsonString, "postgresql")
def _json_string_pg(element: _JsonString, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return f"(CASE WHEN json_typeof({x}) = 'string' THEN {x} #>> '{{}}' END)"


@compiles(_JsonString, "sqlite")
def _json_string_sqlite(element: _JsonString, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return f"(CASE WHEN json_type({x}) = 'text' THEN json_extract({x}, '$') END)"


@compiles(_JsonNumber, "postgresql")
def _json_number_pg(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return (
        f"(CASE json_typeof({x}) WHEN 'number' THEN CAST({x} #>> '{{}}' AS DOUBLE PRECISION)"
        f" WHEN 'boolean' THEN CASE WHEN {x} #>> '{{}}' = 'true' THEN 1.0 ELSE 0.0 END END)"
    )


@compiles(_JsonNumber, "sqlite")
def _json_number_sqlite(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    x = _argument(element, compiler, **kw)
    return (
        f"(CASE WHEN json_type({x}) IN ('integer', 'real', 'true', 'false')"
        f" THEN json_extract({x}, '$') END)"
    )


@compiles(_CodePointOrder, "postgresql")
def _code_point_order_pg(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({_argument(element, compiler, **kw)} COLLATE "C")'


@compiles(_CodePointOrder, "sqlite")
def _code_point_order_sqlite(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return _argument(element, compiler, **kw)  # BINARY: UTF-8 bytes order as code points


@compiles(_JsonString)
@compiles(_JsonNumber)
@compiles(_CodePointOrder)
def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"segments support SQLite and PostgreSQL, not {compiler.dialect.name}")


# --------------------------------------------------------------------------- folding


def _sql(pred: Pred) -> ColumnElement[bool]:
    if isinstance(pred, bool):
        return true() if pred else false()
    return pred


def _all(*preds: Pred) -> Pred:
    parts: list[ColumnElement[bool]] = []
    for pred in preds:
        if isinstance(pred, bool):
            if not pred:
                return False
            continue
        parts.append(pred)
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else and_(*parts)


def _any(*preds: Pred) -> Pred:
    parts: list[ColumnElement[bool]] = []
    for pred in preds:
        if isinstance(pred, bool):
            if pred:
                return True
            continue
        parts.append(pred)
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else or_(*parts)


def _negate(pred: Pred) -> Pred:
    if isinstance(pred, bool):
        return not pred
    return not_(pred)
