"""One friend's tags, fields and answers inside one transaction: read once, written through."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from bot.catalogue import Catalogue
from bot.engine import fields as fieldlib
from storage.models import (
    Answer,
    Audience,
    AudienceMember,
    EnrollmentStatus,
    FieldValue,
    Friend,
    FriendStatus,
    FriendTag,
    LinkClick,
    SequenceEnrollment,
    Tag,
)
from storage.upsert import insert_ignore


class FriendRecord:
    """A friend row plus its tags/fields/answers; every change is written to the session."""

    def __init__(
        self,
        session: Session,
        friend: Friend,
        catalogue: Catalogue,
        now: datetime,
        tz: ZoneInfo,
        tag_ids: TagIds | None = None,
    ) -> None:
        self.session = session
        self.tag_ids = tag_ids or TagIds()
        self.friend = friend
        self.catalogue = catalogue
        self.now = now
        self.tz = tz
        self._tags: set[str] | None = None
        self._fields: dict[str, Any] | None = None
        self._answers: dict[str, dict[str, Any]] | None = None
        self._clicks: dict[str, datetime] | None = None
        self._audiences: set[str] | None = None

    # ------------------------------------------------------------------ tags

    @property
    def tags(self) -> set[str]:
        if self._tags is None:
            rows = self.session.execute(
                select(Tag.name)
                .join(FriendTag, FriendTag.tag_id == Tag.id)
                .where(FriendTag.friend_id == self.friend.id)
            )
            self._tags = {name for (name,) in rows}
        return self._tags

    def add_tag(self, name: str, reason: str) -> bool:
        """Tag the friend; False if they already had it."""
        if name in self.tags:
            return False
        tag_id = self.tag_ids.get(self.session, name)
        insert_ignore(
            self.session,
            FriendTag.__table__,  # type: ignore[arg-type]
            {"friend_id": self.friend.id, "tag_id": tag_id, "added_at": self.now, "reason": reason},
            ["friend_id", "tag_id"],
        )
        self.tags.add(name)
        return True

    def remove_tag(self, name: str) -> bool:
        if name not in self.tags:
            return False
        tag_id = self.tag_ids.get(self.session, name)
        self.session.execute(
            delete(FriendTag).where(
                FriendTag.friend_id == self.friend.id, FriendTag.tag_id == tag_id
            )
        )
        self.tags.discard(name)
        return True

    # ------------------------------------------------------------------ fields

    @property
    def fields(self) -> dict[str, Any]:
        """Field values by name, with catalogue defaults for unset fields."""
        if self._fields is None:
            values: dict[str, Any] = {
                name: d.default
                for name, d in self.catalogue.fields.items()
                if d.default is not None
            }
            rows = self.session.scalars(
                select(FieldValue).where(FieldValue.friend_id == self.friend.id)
            )
            for row in rows:
                values[row.name] = fieldlib.from_json(row.type, row.value_json)
            self._fields = values
        return self._fields

    def set_field(self, name: str, value: Any) -> bool:
        """Store a (coerced) value; True if it changed."""
        definition = self.catalogue.fields.get(name)
        if definition is None:
            # A friend on an old flow version can name a field the catalogue no longer has.
            raise fieldlib.InvalidValue(f"field {name!r} is not in the catalogue")
        value = fieldlib.coerce(definition, value, self.tz)
        if value is None:
            return self.clear_field(name)
        stored = self.session.get(FieldValue, (self.friend.id, name))
        if stored is not None and fieldlib.from_json(stored.type, stored.value_json) == value:
            return False
        columns = fieldlib.typed_columns(definition.type, value)
        if stored is None:
            stored = FieldValue(friend_id=self.friend.id, name=name)
            self.session.add(stored)
        stored.type = definition.type
        stored.value_json = fieldlib.to_json(value)
        stored.value_number = columns["value_number"]
        stored.value_text = columns["value_text"]
        stored.value_datetime = columns["value_datetime"]
        stored.updated_at = self.now
        self.fields[name] = value
        return True

    def clear_field(self, name: str) -> bool:
        result = self.session.execute(
            delete(FieldValue).where(
                FieldValue.friend_id == self.friend.id, FieldValue.name == name
            )
        )
        self.fields.pop(name, None)
        default = self.catalogue.fields.get(name)
        if default is not None and default.default is not None:
            self.fields[name] = default.default
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------------ sequences

    def in_sequence(self, name: str) -> bool:
        """Is the friend enrolled, and not yet finished, in that sequence?"""
        row = self.session.scalar(
            select(SequenceEnrollment.status).where(
                SequenceEnrollment.friend_id == self.friend.id,
                SequenceEnrollment.sequence == name,
            )
        )
        return row == EnrollmentStatus.ACTIVE

    # ------------------------------------------------------------------ answers

    @property
    def answers(self) -> dict[str, dict[str, Any]]:
        """Latest answer per flow and step."""
        if self._answers is None:
            latest: dict[str, dict[str, Any]] = defaultdict(dict)
            rows = self.session.execute(
                select(Answer.flow, Answer.step, Answer.value)
                .where(Answer.friend_id == self.friend.id)
                .order_by(Answer.id)
            )
            for flow, step, value in rows:
                latest[flow][step] = value
            self._answers = dict(latest)
        return self._answers

    def record_answer(self, conversation_id: int, flow: str, step: str, value: Any) -> None:
        # A Core insert: answers are never read back as objects in this transaction, and
        # the ORM's unit of work costs more than the insert on the webhook's hot path.
        self.session.execute(
            insert(Answer).values(
                friend_id=self.friend.id,
                conversation_id=conversation_id,
                flow=flow,
                step=step,
                value=fieldlib.to_json(value),
                answered_at=self.now,
            )
        )
        if self._answers is not None:  # keep a loaded cache right; never load just for this
            self._answers.setdefault(flow, {})[step] = fieldlib.to_json(value)

    # ------------------------------------------------------------------ clicks

    @property
    def clicks(self) -> dict[str, datetime]:
        """The latest click per tracked link."""
        if self._clicks is None:
            rows = self.session.execute(
                select(LinkClick.link, func.max(LinkClick.clicked_at))
                .where(LinkClick.friend_id == self.friend.id)
                .group_by(LinkClick.link)
            )
            self._clicks = {link: at for link, at in rows}
        return self._clicks

    def clicked(self, link: str, within: timedelta | None = None) -> bool:
        """Has the friend clicked that link (in the last `within`, if given)?"""
        latest = self.clicks.get(link)
        if latest is None:
            return False
        return within is None or latest >= self.now - within

    def note_click(self, link: str, at: datetime) -> None:
        """Keep a loaded cache right after a click row was written; never load just for this."""
        if self._clicks is not None:
            latest = self._clicks.get(link)
            self._clicks[link] = at if latest is None else max(latest, at)

    # ------------------------------------------------------------------ audiences

    @property
    def audiences(self) -> set[str]:
        """Names of the uploaded audiences (lists of LINE user ids) the friend is in."""
        if self._audiences is None:
            rows = self.session.execute(
                select(Audience.name)
                .join(AudienceMember, AudienceMember.audience_id == Audience.id)
                .where(AudienceMember.line_user_id == self.friend.line_user_id)
            )
            self._audiences = {name for (name,) in rows}
        return self._audiences


class TagIds:
    """Tag name → id. Tag rows are never deleted, so ids seen in a committed transaction can
    be remembered by the process; ids of this transaction count only once it commits."""

    def __init__(self, known: dict[str, int] | None = None) -> None:
        self.known = known if known is not None else {}
        self.pending: dict[str, int] = {}

    def get(self, session: Session, name: str) -> int:
        """The tag's id, creating the tag row if needed (safe against concurrent creators)."""
        tag_id = self.known.get(name) or self.pending.get(name)
        if tag_id is None:
            tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
            if tag_id is None:
                insert_ignore(session, Tag.__table__, {"name": name}, ["name"])  # type: ignore[arg-type]
                tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
            assert tag_id is not None
            self.pending[name] = tag_id
        return tag_id

    def fork(self) -> TagIds:
        """A view for one transaction over the process's remembered ids."""
        return TagIds(self.known)

    def committed(self) -> None:
        self.known.update(self.pending)
        self.pending.clear()


def lock_friend(session: Session, line_user_id: str, now: Any, *, create: bool) -> Friend | None:
    """The friend's row, locked for this transaction so one user's events never interleave."""
    statement = select(Friend).where(Friend.line_user_id == line_user_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    # SQLite: BEGIN IMMEDIATE already serialises every writer.
    friend = session.scalars(statement).first()
    if friend is None and create:
        insert_ignore(
            session,
            Friend.__table__,  # type: ignore[arg-type]
            {
                "line_user_id": line_user_id,
                "display_name": "",
                "status": FriendStatus.FOLLOWING,
                "created_at": now,
            },
            ["line_user_id"],
        )
        friend = session.scalars(statement).first()
    return friend
