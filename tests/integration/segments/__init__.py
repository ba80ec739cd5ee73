"""Segments: the condition language in SQL, held equal to the Python evaluator.

Shared by the tests here: a catalogue with a field of every type (some with defaults), a
description of one friend and everything about them, and a writer that stores friends the
way the engine does (tags, fields and answers through `FriendRecord`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from bot.catalogue import Catalogue
from bot.catalogue.models import Condition, FieldDef
from bot.engine.conditions import evaluate
from bot.engine.fields import to_json, typed_columns
from bot.engine.friend_record import FriendRecord
from bot.segments.compile import FRIENDS, segment_clause
from bot.segments.queries import tag_ids_for
from storage.db import Database
from storage.models import (
    Answer,
    Audience,
    AudienceMember,
    Conversation,
    FieldValue,
    Friend,
    FriendTag,
    LinkClick,
    SequenceEnrollment,
    Tag,
)

CATALOGUE = Catalogue(
    fields={
        "age": FieldDef(type="integer"),
        "points": FieldDef(type="integer", default=0),
        "score": FieldDef(type="number"),
        "vip": FieldDef(type="boolean", default=False),
        "gender": FieldDef(type="choice", choices=["female", "male", "other"]),
        "memo": FieldDef(type="text", default="-"),
        "birthday": FieldDef(type="date"),
        "reserved_at": FieldDef(type="datetime"),
    },
    tags=["a", "b", "c"],
)
AUDIENCES = ("vip", "old")


@dataclass
class FriendSpec:
    """One friend and everything conditions can look at."""

    status: str = "following"
    followed_at: datetime | None = None
    route: str | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # through FriendRecord.set_field
    # A stored row of a field the catalogue does not define: (name, type, value).
    stray: tuple[str, str, Any] | None = None
    clicks: list[tuple[str, datetime]] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    enrolments: dict[str, str] = field(default_factory=dict)  # sequence → status
    answers: list[tuple[str, str, Any]] = field(default_factory=list)  # in answer order


def clear(db: Database) -> None:
    with db.write() as session:
        for model in (
            Answer,
            Conversation,
            FriendTag,
            FieldValue,
            LinkClick,
            SequenceEnrollment,
            AudienceMember,
            Audience,
            Tag,
            Friend,
        ):
            session.execute(delete(model))


def write_friends(db: Database, specs: list[FriendSpec], now: datetime, tz: ZoneInfo) -> list[int]:
    """Store the friends (ids in the order given)."""
    ids = []
    with db.write() as session:
        audiences = {name: Audience(name=name, updated_at=now) for name in AUDIENCES}
        session.add_all(audiences.values())
        session.flush()
        # A member who is no friend (yet) changes nothing.
        session.add(AudienceMember(audience_id=audiences["vip"].id, line_user_id="U-nobody"))
        for index, spec in enumerate(specs):
            friend = Friend(
                line_user_id=f"U{index:032x}",
                display_name=f"friend {index}",
                status=spec.status,
                followed_at=spec.followed_at,
                created_at=now,
                route=spec.route,
            )
            session.add(friend)
            session.flush()
            ids.append(friend.id)
            record = FriendRecord(session, friend, CATALOGUE, now, tz)
            for tag in spec.tags:
                record.add_tag(tag, "test")
            for name, value in spec.fields.items():
                record.set_field(name, value)
            if spec.stray is not None:
                name, kind, value = spec.stray
                session.add(
                    FieldValue(
                        friend_id=friend.id,
                        name=name,
                        type=kind,
                        value_json=to_json(value),
                        updated_at=now,
                        **typed_columns(kind, value),
                    )
                )
            if spec.answers:
                conversation = Conversation(
                    friend_id=friend.id,
                    flow="welcome",
                    flow_version="v",
                    state="end",
                    status="completed",
                    started_at=now,
                    updated_at=now,
                )
                session.add(conversation)
                session.flush()
                for flow, step, value in spec.answers:
                    record.record_answer(conversation.id, flow, step, value)
            for link, at in spec.clicks:
                session.add(LinkClick(friend_id=friend.id, link=link, source="test", clicked_at=at))
            for name in spec.audiences:
                session.add(
                    AudienceMember(audience_id=audiences[name].id, line_user_id=friend.line_user_id)
                )
            for sequence, status in spec.enrolments.items():
                session.add(
                    SequenceEnrollment(
                        friend_id=friend.id,
                        sequence=sequence,
                        status=status,
                        started_at=now,
                        next_step=0,
                        updated_at=now,
                    )
                )
    return ids


def sql_matches(
    db: Database,
    condition: Condition,
    now: datetime,
    tz: ZoneInfo,
    catalogue: Catalogue = CATALOGUE,
) -> set[int]:
    """Ids of every friend (blocked too) the SQL clause matches, with tags compared by id (as
    counts and broadcasts do) and by name (as the rich menu rules do): the two must agree."""
    by_name = segment_clause(condition, catalogue=catalogue, tz=tz, now=now)
    with db.read() as session:
        tag_ids = tag_ids_for(session, condition, catalogue)
        by_id = segment_clause(condition, catalogue=catalogue, tz=tz, now=now, tag_ids=tag_ids)
        found = set(session.scalars(select(FRIENDS.c.id).where(by_id)))
        assert found == set(session.scalars(select(FRIENDS.c.id).where(by_name))), condition
        return found


def python_matches(
    db: Database,
    condition: Condition,
    now: datetime,
    tz: ZoneInfo,
    catalogue: Catalogue = CATALOGUE,
) -> set[int]:
    """Ids of every friend the engine's evaluator matches."""
    with db.read() as session:
        return {
            friend.id
            for friend in session.scalars(select(Friend))
            if evaluate(condition, FriendRecord(session, friend, catalogue, now, tz))
        }
