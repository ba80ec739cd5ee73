"""Abandoning questionnaires whose `timeout` has passed (on_timeout actions run)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.delivery.outbox import queue_for_friend
from bot.engine.friend_record import FriendRecord
from bot.engine.turn import Turn
from bot.inbox import lock_friend
from bot.runtime import Runtime
from storage.models import Conversation, Friend

log = logging.getLogger(__name__)


def expire_due_conversations(runtime: Runtime, batch: int = 200) -> int:
    """Abandon every active conversation whose expiry has passed; returns how many.

    Each friend is handled in its own transaction with their row locked, exactly as a webhook
    would, so a sweep and a late answer never both act on one conversation."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        due = session.execute(
            select(Conversation.id, Friend.line_user_id)
            .join(Friend, Friend.id == Conversation.friend_id)
            .where(Conversation.status == "active", Conversation.expires_at <= now)
            .order_by(Conversation.expires_at)
            .limit(batch)
        ).all()
    expired = 0
    for _conversation_id, line_user_id in due:
        catalogue = runtime.catalogue
        tag_ids = runtime.tag_ids.fork()
        with runtime.db.write() as session:
            friend = lock_friend(session, line_user_id, now, create=False)
            if friend is None:
                continue
            turn = Turn(
                record=FriendRecord(session, friend, catalogue, now, runtime.settings.tz, tag_ids),
                catalogue=catalogue,
                templates=runtime.templates,
                cause=f"timeout:{line_user_id}",
            )
            before = runtime.dispatcher.conversations.active(session, friend.id)
            runtime.dispatcher.current(turn)  # abandons it if (still) expired
            if before is not None and before.status == "abandoned":
                expired += 1
                runtime.dispatcher.finish(turn)
            rows = queue_for_friend(
                session,
                friend,
                turn.outgoing,
                reply_token=None,
                cause=turn.cause,
                now=now,
                claim_for=runtime.sender.owner,
            )
        tag_ids.committed()
        if rows:
            runtime.sender.send_claimed(rows)
    if expired:
        log.info("abandoned %d timed-out questionnaire(s)", expired)
    return expired
