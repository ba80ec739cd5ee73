"""What a LINE webhook event does to one friend: the follow and block bookkeeping on the
friend's row, then the dispatcher (a follow, a block, a typed text, a postback).

The service (`bot.services.inbox`) stores the event, locks the friend and ends the
turn; this decides. Tests drive the engine with the same function and plain event dicts."""

from __future__ import annotations

from typing import Any

from bot.engine.dispatch import Dispatcher
from bot.engine.turn import Turn
from storage.models import FriendStatus, WebhookEventStatus


def apply_event(
    dispatcher: Dispatcher, turn: Turn, event: dict[str, Any], *, profile_name: str | None = None
) -> WebhookEventStatus:
    """Apply one event of the turn's friend; IGNORED for kinds and shapes stepline does not
    act on (a sticker, a postback without data)."""
    kind = str(event.get("type", ""))
    friend = turn.record.friend
    now = turn.now
    if kind == "follow":
        flag = (event.get("follow") or {}).get("isUnblocked")
        unblocked = flag if isinstance(flag, bool) else friend.followed_at is not None
        friend.status = FriendStatus.FOLLOWING
        if profile_name:
            friend.display_name = profile_name[:200]
        if unblocked:
            friend.unblocked_at = now
        else:
            friend.followed_at = now
        dispatcher.on_follow(turn, unblocked=unblocked)
        return WebhookEventStatus.DONE
    if kind == "unfollow":
        friend.status = FriendStatus.BLOCKED
        friend.blocked_at = now
        turn.reply_token = None  # LINE gives none, and a blocked friend receives nothing
        dispatcher.on_unfollow(turn)
        return WebhookEventStatus.DONE
    if friend.followed_at is None and friend.status == FriendStatus.FOLLOWING:
        # A message from someone we never saw follow (events before stepline was installed).
        friend.followed_at = now
    if kind == "message":
        message = event.get("message") or {}
        if message.get("type") == "text" and isinstance(message.get("text"), str):
            dispatcher.on_text(turn, message["text"])
            return WebhookEventStatus.DONE
        return WebhookEventStatus.IGNORED
    if kind == "postback":
        postback = event.get("postback") or {}
        data = postback.get("data")
        if isinstance(data, str):
            params = postback.get("params") if isinstance(postback.get("params"), dict) else None
            dispatcher.on_postback(turn, data, params)
            return WebhookEventStatus.DONE
    return WebhookEventStatus.IGNORED
