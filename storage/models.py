"""The tables. Every piece of state lives here; nothing is held only in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite has no BIGINT autoincrement; an INTEGER primary key is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# The values of the status columns. StrEnums: they compare equal to (and are stored as) the
# plain strings, so queries, rows and JSON read the same as before.


class FriendStatus(StrEnum):
    FOLLOWING = "following"
    BLOCKED = "blocked"


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # timed out
    CANCELLED = "cancelled"  # the friend blocked the account
    REPLACED = "replaced"  # another flow started


class WebhookEventStatus(StrEnum):
    RECEIVED = "received"  # stored and acknowledged, not processed yet (or due for a retry)
    DONE = "done"
    IGNORED = "ignored"  # nothing to do, or unreadable (a group's event, a bad field, …): see error
    FAILED = "failed"  # processing raised on every attempt: parked until `stepline events retry`


class OutboxKind(StrEnum):
    REPLY = "reply"
    PUSH = "push"
    MULTICAST = "multicast"
    RICHMENU = "richmenu"  # link the recipients' rich menus; no messages


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender (owner + lease)
    SENT = "sent"
    FAILED = "failed"  # LINE refused it (4xx), or retries ran out
    DRY_RUN = "dry_run"  # a dry-run broadcast's row: never sent
    SKIPPED = "skipped"  # not sent: the friend has blocked, or a step later than the late policy
    CANCELLED = "cancelled"  # its broadcast was cancelled before it was sent
    REPLACED = "replaced"  # a reply LINE refused, sent again as a push (a new row)


class RichMenuStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    DELETED = "deleted"


class OutsideEventStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # the event document's `when` did not hold


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class BroadcastStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


# `friends.rich_menu_id` when what LINE has linked is not known (the friend blocked the
# account meanwhile: LINE does not document what it keeps): always link or unlink then.
UNKNOWN_LINK = "?"


class Friend(Base):
    """A LINE user who has added the account (友だち)."""

    __tablename__ = "friends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=FriendStatus.FOLLOWING)
    followed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unblocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # 流入経路: how the friend came in (a QR code, an ad, a shop), reported by the system that
    # owns the entry point through the admin API; `{route: R}` conditions match it.
    route: Mapped[str | None] = mapped_column(String(100), index=True)
    # Rich menus (bot.richmenus): what the `show_when` rules chose at the last evaluation,
    # the menu the friend should see (the rules' choice or a `rich_menu` action's), both
    # catalogue names with NULL meaning the default menu, and the LINE rich menu id last
    # confirmed linked to them (NULL: none linked, the default shows).
    rich_menu_rule: Mapped[str | None] = mapped_column(String(100))
    rich_menu: Mapped[str | None] = mapped_column(String(100))
    rich_menu_id: Mapped[str | None] = mapped_column(String(100))


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class FriendTag(Base):
    __tablename__ = "friend_tags"

    friend_id: Mapped[int] = mapped_column(
        ForeignKey("friends.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_friend_tags_tag_friend", "tag_id", "friend_id"),)


class FieldValue(Base):
    """One typed field of one friend; the typed columns make segments queryable in SQL."""

    __tablename__ = "field_values"

    friend_id: Mapped[int] = mapped_column(
        ForeignKey("friends.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    value_json: Mapped[Any] = mapped_column(JSON)
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    value_datetime: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Covering: a segment's number range (`age between 30 and 49`) is answered from the
        # index alone, with the friend and the stored type (no table reads).
        Index("ix_field_values_name_number", "name", "value_number", "type", "friend_id"),
        Index("ix_field_values_name_datetime", "name", "value_datetime"),
    )


class FlowVersion(Base):
    """The YAML of one flow at one content hash, so friends mid-flow keep their version."""

    __tablename__ = "flow_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    yaml_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("flow", "content_hash", name="uq_flow_versions_flow_hash"),)


class Conversation(Base):
    """A friend's position in a flow; the model the shared state machine moves."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("friends.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(100))
    flow_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.ACTIVE)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_conversations_friend_status", "friend_id", "status"),
        Index("ix_conversations_status_expires", "status", "expires_at"),
    )


class Answer(Base):
    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("friends.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    value: Mapped[Any] = mapped_column(JSON)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_answers_friend_flow_step", "friend_id", "flow", "step"),)


class WebhookEvent(Base):
    """Every webhook event once, by LINE's `webhookEventId`: stored when it arrives
    (`received`), then claimed (owner + lease, as the outbox) and processed off the request."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # The queue's two questions, answered from small partial indexes: a friend's next
        # event in LINE's order, and the events a sweep may take.
        Index(
            "ix_webhook_events_received_user",
            "line_user_id",
            "line_timestamp",
            "id",
            postgresql_where=text("status = 'received'"),
            sqlite_where=text("status = 'received'"),
        ),
        Index(
            "ix_webhook_events_received_due",
            "due_at",
            postgresql_where=text("status = 'received'"),
            sqlite_where=text("status = 'received'"),
        ),
        Index(
            "ix_webhook_events_failed",
            "id",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    line_user_id: Mapped[str | None] = mapped_column(String(64))
    is_redelivery: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=WebhookEventStatus.DONE)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    line_timestamp: Mapped[int | None] = mapped_column(BigInteger)  # LINE's, in ms
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # received: when to (re)try
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A reply or push to LINE, written in the same transaction as its cause."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # OutboxKind
    friend_id: Mapped[int | None] = mapped_column(ForeignKey("friends.id", ondelete="SET NULL"))
    recipients: Mapped[Any] = mapped_column(JSON)  # list of LINE user ids
    reply_token: Mapped[str | None] = mapped_column(String(100))
    messages: Mapped[Any] = mapped_column(JSON)  # LINE message objects (API JSON)
    retry_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    cause: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_request_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (Index("ix_outbox_status_due", "status", "due_at"),)


class RichMenuVersion(Base):
    """One version of a catalogue rich menu created at LINE by `stepline richmenu sync`.

    A menu's content (LINE's menu object and its image) is hashed: an unchanged menu keeps
    its LINE id; a changed one gets a new version (`active`), friends are re-linked, and the
    old one is `retired` until it is deleted at LINE (`deleted`)."""

    __tablename__ = "rich_menu_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # RichMenuStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutsideEvent(Base):
    """An event reported by an outside system (`POST /api/v1/events`), once by its `id`.

    Written in the same transaction as what the event did, so a retry of the same id is
    answered as a duplicate and has no second effect."""

    __tablename__ = "outside_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    friend_id: Mapped[int | None] = mapped_column(ForeignKey("friends.id", ondelete="SET NULL"))
    properties: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # OutsideEventStatus
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SequenceEnrollment(Base):
    """A friend's place in a step sequence or reminder: which step is next and when.

    The worker claims rows by the indexed `next_due_at`; running a step (writing its outbox
    row) and moving `next_step` on happen in one transaction, so a step is planned once."""

    __tablename__ = "sequence_enrollments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("friends.id", ondelete="CASCADE"))
    sequence: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # EnrollmentStatus
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        UniqueConstraint("friend_id", "sequence", name="uq_sequence_enrollments_friend_sequence"),
        Index("ix_sequence_enrollments_status_due", "status", "next_due_at"),
    )


class CatalogueVersion(Base):
    """A catalogue some process loaded and put in force: every `serve` and `worker` process
    moves to the newest row's catalogue (checked cheaply by the highest id)."""

    __tablename__ = "catalogue_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    origin: Mapped[str] = mapped_column(String(200), default="")  # which process, and why


class LinkClick(Base):
    """One click on a tracked link (`/r/<token>`): who, which link, from which message."""

    __tablename__ = "link_clicks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("friends.id", ondelete="CASCADE"))
    link: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(200), default="")  # the message's cause
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Whether this click ran the link's `on_click` (at most once per friend and link within
    # a window; every click is still a row).
    actions_ran: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (
        Index("ix_link_clicks_link_friend_at", "link", "friend_id", "clicked_at"),
        Index("ix_link_clicks_friend", "friend_id"),
    )


class Audience(Base):
    """An uploaded list of LINE user ids (`stepline audience import`), usable in conditions."""

    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(300), default="")  # file name or "api"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AudienceMember(Base):
    __tablename__ = "audience_members"

    audience_id: Mapped[int] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    )
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_audience_members_user", "line_user_id"),)


class Broadcast(Base):
    """A segment broadcast (セグメント配信): planned, then sending in batches, then done.

    The audience is frozen into `broadcast_batches` when sending starts; a batch row is
    deleted when its outbox rows are written, so a crashed worker's successor writes only
    the batches still there."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))  # the `broadcast:` document, if any
    key: Mapped[str | None] = mapped_column(String(200), unique=True)  # scheduled-once key
    segment: Mapped[Any] = mapped_column(JSON)  # the condition (YAML/JSON form)
    messages: Mapped[Any] = mapped_column(JSON)  # message definitions as written
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # BroadcastStatus
    dry_run: Mapped[bool] = mapped_column(default=False)
    planned: Mapped[int | None] = mapped_column(Integer)  # recipients frozen at the start
    queued_all: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_broadcasts_status_send_at", "status", "send_at"),)


class BroadcastBatch(Base):
    """One batch of a broadcast's frozen audience: up to `STEPLINE_BROADCAST_BATCH` friend ids
    (a JSON list), written to the outbox in one transaction when its turn comes.

    The audience is frozen as batches, not a row per friend: freezing 200,000 friends then
    writes 40 rows instead of 200,000 (and their index entries and foreign-key checks), which
    took longer than LINE needs to accept the whole broadcast."""

    __tablename__ = "broadcast_batches"

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0, 1, 2, …
    friend_ids: Mapped[Any] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)
