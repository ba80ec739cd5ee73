"""Timed-out questionnaires: abandoned (their `on_timeout` actions run) by the worker's sweep."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.turns import FriendNotFound, run_turn
from storage.models import Conversation, ConversationStatus, Friend

log = logging.getLogger(__name__)


def expire_due_conversations(runtime: Runtime, batch: int = 200) -> int:
    """Abandon every active conversation whose expiry has passed; returns how many.

    Each friend is handled in its own transaction with their row locked, exactly as a webhook
    would, so a sweep and a late answer never both act on one conversation."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        due = session.scalars(
            select(Friend.line_user_id)
            .join(Conversation, Conversation.friend_id == Friend.id)
            .where(Conversation.status == ConversationStatus.ACTIVE, Conversation.expires_at <= now)
            .order_by(Conversation.expires_at)
            .limit(batch)
        ).all()

    def expire(turn: Turn) -> int:
        dispatcher = runtime.dispatcher
        before = dispatcher.conversations.active(turn.record.session, turn.record.friend.id)
        dispatcher.current(turn)  # abandons it if it is (still) past its expiry
        if before is None or before.status != ConversationStatus.ABANDONED:
            return 0
        dispatcher.finish(turn)
        return 1

    expired = 0
    for line_user_id in due:
        try:
            expired += run_turn(runtime, line_user_id, f"timeout:{line_user_id}", expire)
        except FriendNotFound:
            continue
    if expired:
        log.info("abandoned %d timed-out questionnaire(s)", expired)
    return expired
