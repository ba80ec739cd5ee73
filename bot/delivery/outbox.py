"""The outbox: every reply and push is a row written in the same transaction as its cause."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.line.limits import (
    MAX_BULK_LINK_USERS,
    MAX_MESSAGES_PER_REQUEST,
    MAX_MULTICAST_RECIPIENTS,
)
from storage.models import Friend, FriendStatus, OutboxKind, OutboxMessage, OutboxStatus

LEASE = timedelta(seconds=60)  # how long a claimed row is a sender's before others may retry it


def chunks(
    messages: list[dict[str, Any]], size: int = MAX_MESSAGES_PER_REQUEST
) -> list[list[dict[str, Any]]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def queue_for_friend(
    session: Session,
    friend: Friend,
    messages: list[dict[str, Any]],
    *,
    reply_token: str | None,
    cause: str,
    now: datetime,
    claim_for: str | None = None,
    lease: timedelta = LEASE,
    broadcast_id: int | None = None,
) -> list[OutboxMessage]:
    """Queue a turn's messages: the first five as a free reply when there is a reply token,
    the rest as pushes (each with its retry key fixed now, before any attempt).

    `claim_for` writes the rows already claimed by that sender (owner + lease), for a sender
    that sends them right after the commit: no other sender can take them meanwhile, and
    if this process dies they become claimable again when the lease runs out."""
    if not messages or friend.status == FriendStatus.BLOCKED:
        return []
    rows = friend_rows(friend, messages, reply_token, cause, now, broadcast_id)
    return _write(session, rows, now, claim_for, lease)


def friend_rows(
    friend: Friend,
    messages: list[dict[str, Any]],
    reply_token: str | None,
    cause: str,
    now: datetime,
    broadcast_id: int | None = None,
) -> list[OutboxMessage]:
    """The rows of one friend's messages (see `queue_for_friend`), not written yet."""
    rows: list[OutboxMessage] = []
    batches = chunks(messages)
    if reply_token:
        rows.append(
            _row(OutboxKind.REPLY, friend, batches.pop(0), cause, now, reply_token=reply_token)
        )
    for batch in batches:
        rows.append(
            _row(
                OutboxKind.PUSH,
                friend,
                batch,
                cause,
                now,
                retry_key=str(uuid.uuid4()),
                broadcast_id=broadcast_id,
            )
        )
    return rows


def _write(
    session: Session,
    rows: list[OutboxMessage],
    now: datetime,
    claim_for: str | None,
    lease: timedelta,
) -> list[OutboxMessage]:
    """Add the rows to the caller's transaction (claimed by `claim_for` when given) with one
    flush: an INSERT statement per thousand rows, not a round trip per row."""
    if claim_for is not None:
        claim(rows, claim_for, now, lease)
    session.add_all(rows)
    session.flush()
    return rows


def claim(rows: list[OutboxMessage], owner: str, now: datetime, lease: timedelta = LEASE) -> None:
    """Write rows already claimed by `owner` (a sender that sends them right after the
    commit); if it dies, they are claimable again when the lease runs out."""
    for row in rows:
        row.status, row.owner, row.lease_until, row.attempts = (
            OutboxStatus.SENDING,
            owner,
            now + lease,
            1,
        )


def _row(
    kind: OutboxKind,
    friend: Friend,
    messages: list[dict[str, Any]],
    cause: str,
    now: datetime,
    *,
    reply_token: str | None = None,
    retry_key: str | None = None,
    broadcast_id: int | None = None,
) -> OutboxMessage:
    return new_row(
        kind,
        [friend.line_user_id],
        messages,
        cause,
        now,
        friend_id=friend.id,
        reply_token=reply_token,
        retry_key=retry_key,
        broadcast_id=broadcast_id,
    )


def new_row(
    kind: OutboxKind,
    recipients: list[str],
    messages: list[dict[str, Any]],
    cause: str,
    now: datetime,
    *,
    friend_id: int | None = None,
    reply_token: str | None = None,
    retry_key: str | None = None,
    broadcast_id: int | None = None,
) -> OutboxMessage:
    """A pending outbox row, due now (`broadcast_id`: a row of that broadcast)."""
    return OutboxMessage(
        kind=kind,
        friend_id=friend_id,
        broadcast_id=broadcast_id,
        recipients=recipients,
        reply_token=reply_token,
        messages=messages,
        retry_key=retry_key,
        cause=cause[:200],
        status=OutboxStatus.PENDING,
        attempts=0,
        due_at=now,
        created_at=now,
    )


def queue_grouped(
    session: Session,
    planned: list[tuple[Friend, list[dict[str, Any]]]],
    *,
    cause: str,
    now: datetime,
    claim_for: str | None = None,
    lease: timedelta = LEASE,
) -> list[OutboxMessage]:
    """Queue many friends' messages at once: friends who get exactly the same messages (a
    step with nothing personal in it) share multicast rows of at most 500 recipients; the
    rest get pushes. Written in the caller's transaction, like every outbox row."""
    by_content: dict[tuple[str, int], list[Friend]] = {}
    contents: dict[tuple[str, int], list[dict[str, Any]]] = {}
    seen: dict[tuple[int, str], int] = {}
    for friend, messages in planned:
        if not messages or friend.status == FriendStatus.BLOCKED:
            continue
        text = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        # The same content twice for one friend (two identical steps) is two sends.
        occurrence = seen.get((friend.id, text), 0)
        seen[(friend.id, text)] = occurrence + 1
        key = (text, occurrence)
        by_content.setdefault(key, []).append(friend)
        contents[key] = messages
    rows: list[OutboxMessage] = []
    for key, friends in by_content.items():
        if len(friends) == 1:
            rows += friend_rows(friends[0], contents[key], None, cause, now)
        else:
            rows += multicast_rows([f.line_user_id for f in friends], contents[key], cause, now)
    return _write(session, rows, now, claim_for, lease)


def queue_multicast(
    session: Session,
    user_ids: list[str],
    messages: list[dict[str, Any]],
    *,
    cause: str,
    now: datetime,
    claim_for: str | None = None,
    lease: timedelta = LEASE,
    broadcast_id: int | None = None,
) -> list[OutboxMessage]:
    """Queue the same messages for many friends: multicast rows of at most 500 recipients
    (and five messages), each with its own retry key."""
    rows = multicast_rows(user_ids, messages, cause, now, broadcast_id)
    return _write(session, rows, now, claim_for, lease)


def multicast_rows(
    user_ids: list[str],
    messages: list[dict[str, Any]],
    cause: str,
    now: datetime,
    broadcast_id: int | None = None,
) -> list[OutboxMessage]:
    """The rows of `queue_multicast`, not written yet."""
    rows: list[OutboxMessage] = []
    for start in range(0, len(user_ids), MAX_MULTICAST_RECIPIENTS):
        group = user_ids[start : start + MAX_MULTICAST_RECIPIENTS]
        for batch in chunks(messages):
            rows.append(
                new_row(
                    OutboxKind.MULTICAST,
                    group,
                    batch,
                    cause,
                    now,
                    retry_key=str(uuid.uuid4()),
                    broadcast_id=broadcast_id,
                )
            )
    return rows


def queue_menu_link(
    session: Session, friend: Friend, *, cause: str, now: datetime
) -> tuple[OutboxMessage | None, bool]:
    """Queue linking the friend's rich menu to what `friends.rich_menu` says: (the new row,
    whether it may be sent at once).

    No row when one that has not been taken yet will do it: the sender reads the assignment
    when it sends, and that row is locked here until this transaction commits (a worker
    claiming it meanwhile would read the old assignment and finish it, losing this change;
    `SKIP LOCKED` makes it wait for the commit instead). While another link row of this
    friend, or a bulk link row of `stepline richmenu sync`, is being sent, the new one is
    left to the worker, which never sends two of one friend's link rows at once
    (`Sender.claim_due`): two in flight could reach LINE in the wrong order."""
    mine = select(OutboxMessage.status).where(
        OutboxMessage.kind == OutboxKind.RICHMENU,
        OutboxMessage.friend_id == friend.id,
        OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
    )
    if session.get_bind().dialect.name != "sqlite":  # SQLite: the write lock is the database's
        mine = mine.with_for_update()
    states = set(session.scalars(mine))
    if OutboxStatus.PENDING in states:
        return None, False
    bulk_in_flight = session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.kind == OutboxKind.RICHMENU,
            OutboxMessage.friend_id.is_(None),
            OutboxMessage.status == OutboxStatus.SENDING,
        )
        .limit(1)
    )
    row = _row(OutboxKind.RICHMENU, friend, [], cause, now)
    session.add(row)
    session.flush()
    return row, OutboxStatus.SENDING not in states and bulk_in_flight is None


def queue_menu_links(
    session: Session, user_ids: list[str], *, cause: str, now: datetime
) -> list[OutboxMessage]:
    """Queue re-linking many friends' rich menus: rows of at most 500 (LINE's bulk link)."""
    rows = [
        new_row(OutboxKind.RICHMENU, user_ids[start : start + MAX_BULK_LINK_USERS], [], cause, now)
        for start in range(0, len(user_ids), MAX_BULK_LINK_USERS)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def record_skipped(
    session: Session,
    friend: Friend,
    messages: list[dict[str, Any]],
    *,
    cause: str,
    due_at: datetime,
    now: datetime,
    reason: str,
) -> OutboxMessage:
    """A row for messages that were due but are not sent (status `skipped`, with why): the
    outbox keeps the record of every planned send, sent or not."""
    row = _row(OutboxKind.PUSH, friend, messages, cause, now)
    row.status, row.due_at, row.error = OutboxStatus.SKIPPED, due_at, reason
    session.add(row)
    return row
