"""Processing one webhook event: stored once, applied once, in one transaction per event."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.engine.events import apply_event
from bot.engine.friend_record import lock_friend
from bot.line.client import LineError
from bot.runtime import Runtime
from bot.services.turns import finish_turns
from storage.models import OutboxMessage, WebhookEvent, WebhookEventStatus
from storage.upsert import insert_ignore

log = logging.getLogger(__name__)

HANDLED_TYPES = ("follow", "unfollow", "message", "postback")


@dataclass
class Processed:
    webhook_event_id: str
    # The event's WebhookEventStatus (done | ignored | failed), or duplicate: seen before.
    status: str
    outbox: list[OutboxMessage] = field(default_factory=list)


def event_id(event: dict[str, Any]) -> str | None:
    value = event.get("webhookEventId")
    return value if isinstance(value, str) and value else None


def user_id(event: dict[str, Any]) -> str | None:
    """The LINE user of a one-to-one chat event; None for groups, rooms and the rest
    (a friend's message in a group must not answer their questionnaire)."""
    source = event.get("source")
    if (
        isinstance(source, dict)
        and source.get("type") == "user"
        and isinstance(source.get("userId"), str)
    ):
        return str(source["userId"])
    return None


def process_event(runtime: Runtime, event: dict[str, Any]) -> Processed:
    """Store the event once and apply it; after commit, send what it queued."""
    webhook_event_id = event_id(event)
    if webhook_event_id is None:
        log.warning("event without webhookEventId ignored: type=%s", event.get("type"))
        return Processed("", "ignored")
    profile_name = _profile_name(runtime, event)
    try:
        processed = _apply(runtime, event, webhook_event_id, profile_name)
    except Exception as exc:
        # Never lose an acknowledged event: record it as failed, with why, for a retry.
        log.exception("event %s failed", webhook_event_id)
        _record_failure(runtime, event, webhook_event_id, exc)
        return Processed(webhook_event_id, "failed")
    if processed.outbox:
        runtime.sender.send_claimed(processed.outbox)
    return processed


def _profile_name(runtime: Runtime, event: dict[str, Any]) -> str | None:
    """Fetch a new friend's display name before the transaction (no network under a lock)."""
    if event.get("type") != "follow":
        return None
    uid = user_id(event)
    if uid is None:
        return None
    try:
        profile = runtime.line.get_profile(uid)
    except LineError as exc:
        log.warning("profile of %s unavailable: %s", uid, exc)
        return None
    return profile.display_name if profile else None


def _apply(
    runtime: Runtime, event: dict[str, Any], webhook_event_id: str, profile_name: str | None
) -> Processed:
    now = runtime.clock.now()
    kind = str(event.get("type", ""))
    uid = user_id(event)
    catalogue = runtime.catalogue
    tag_ids = runtime.tag_ids.fork()
    with runtime.db.write() as session:
        inserted = insert_ignore(
            session,
            WebhookEvent.__table__,  # type: ignore[arg-type]
            {
                "webhook_event_id": webhook_event_id,
                "type": kind[:40],
                "line_user_id": uid,
                "is_redelivery": bool(
                    (event.get("deliveryContext") or {}).get("isRedelivery", False)
                ),
                "payload": event,
                # Written as done: if processing fails the whole transaction rolls back and
                # the event is recorded as failed instead (see _record_failure).
                "status": WebhookEventStatus.DONE,
                "received_at": now,
                "processed_at": now,
            },
            ["webhook_event_id"],
        )
        if not inserted and not _retake_failed(session, webhook_event_id, now):
            return Processed(webhook_event_id, "duplicate")
        status = WebhookEventStatus.IGNORED
        rows: list[OutboxMessage] = []
        if uid is not None and kind in HANDLED_TYPES:
            friend = lock_friend(
                session, uid, now, create=kind in ("follow", "message", "postback")
            )
            if friend is not None:
                turn = runtime.new_turn(
                    session,
                    friend,
                    catalogue,
                    now,
                    tag_ids,
                    f"webhook:{webhook_event_id}",
                    reply_token=_reply_token(event),
                )
                status = apply_event(runtime.dispatcher, turn, event, profile_name=profile_name)
                rows = finish_turns(runtime, session, [turn], now=now)
        if status != WebhookEventStatus.DONE:
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.webhook_event_id == webhook_event_id)
                .values(status=status)
            )
    tag_ids.committed()
    return Processed(webhook_event_id, status, rows)


def _retake_failed(session: Session, webhook_event_id: str, now: datetime) -> bool:
    """A redelivery of an event that failed earlier is processed again (not a duplicate)."""
    statement = select(WebhookEvent).where(WebhookEvent.webhook_event_id == webhook_event_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = session.scalars(statement).one()
    if row.status != WebhookEventStatus.FAILED:
        return False
    row.status, row.error = WebhookEventStatus.DONE, None
    row.processed_at, row.is_redelivery = now, True
    return True


def _record_failure(
    runtime: Runtime, event: dict[str, Any], webhook_event_id: str, exc: BaseException
) -> None:
    now = runtime.clock.now()
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
    with runtime.db.write() as session:
        inserted = insert_ignore(
            session,
            WebhookEvent.__table__,  # type: ignore[arg-type]
            {
                "webhook_event_id": webhook_event_id,
                "type": str(event.get("type", ""))[:40],
                "line_user_id": user_id(event),
                "is_redelivery": False,
                "payload": event,
                "status": WebhookEventStatus.FAILED,
                "error": detail,
                "received_at": now,
            },
            ["webhook_event_id"],
        )
        if not inserted:
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.webhook_event_id == webhook_event_id)
                .values(status=WebhookEventStatus.FAILED, error=detail)
            )


def _reply_token(event: dict[str, Any]) -> str | None:
    token = event.get("replyToken")
    return token if isinstance(token, str) and token else None
