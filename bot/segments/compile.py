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

How a stored value compares is in `values` (naive date-times, daylight saving, the typed
columns); what SQLite and PostgreSQL spell differently, in `dialects`.

Nothing here imports Flask: the CLI, the admin API and the broadcast worker share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, and_, func, select

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
)
from bot.engine.conditions import field_matches
from bot.segments.folding import Pred, fold_all, fold_any, negate, to_sql
from bot.segments.resolving import named
from bot.segments.values import json_equals, stored_matches
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
    return to_sql(_Compiler(catalogue, tz, now, tag_ids).clause(condition))


# --------------------------------------------------------------------------- compiling


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
            inner = named(condition.segment, self.catalogue, self.seen)
            outer, self.seen = self.seen, (*self.seen, condition.segment)
            try:
                return self.clause(inner)
            finally:
                self.seen = outer
        if isinstance(condition, AllCondition):
            return fold_all(*(self.clause(c) for c in condition.all))
        if isinstance(condition, AnyCondition):
            return self.any_of(condition.any)
        if isinstance(condition, NotCondition):
            return negate(self.clause(condition.not_))
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
                stored = fold_any(*(stored_matches(c, fv, self.tz) for c in group))
                preds.append(self._field_row(fv, name, stored))
        for c in conditions:
            if (isinstance(c, TagCondition) and len(tags) > 1) or id(c) in merged:
                continue
            preds.append(self.clause(c))
        return fold_any(*preds)

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
        matches = json_equals(a.c.value, spec.value)
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
        stored = stored_matches(condition, fv, self.tz)
        if stored is True:
            return True if unset_matches else self._field_row(fv, condition.field)
        has = self._field_row(fv, condition.field, stored)
        return fold_any(has, negate(self._field_row(fv, condition.field))) if unset_matches else has
