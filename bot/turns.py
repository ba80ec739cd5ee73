"""Running one turn for one friend outside a webhook (the admin API, the timeout sweep):
lock the friend, act, queue what the turn says as pushes, commit, send."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bot.delivery.outbox import claim, queue_for_friend
from bot.engine.turn import Turn
from bot.inbox import lock_friend
from bot.runtime import Runtime

T = TypeVar("T")


class FriendNotFound(LookupError):
    """No friend with that LINE user id."""


def run_turn(runtime: Runtime, line_user_id: str, cause: str, act: Callable[[Turn], T]) -> T:
    """Run `act` in one transaction with the friend's row locked; messages it produces go out
    as pushes (there is no reply token outside a webhook) after the commit."""
    now = runtime.clock.now()
    catalogue = runtime.catalogue
    tag_ids = runtime.tag_ids.fork()
    with runtime.db.write() as session:
        friend = lock_friend(session, line_user_id, now, create=False)
        if friend is None:
            raise FriendNotFound(line_user_id)
        turn = runtime.new_turn(session, friend, catalogue, now, tag_ids, cause)
        result = act(turn)
        rows = queue_for_friend(
            session,
            friend,
            turn.outgoing,
            reply_token=None,
            cause=cause,
            now=now,
            claim_for=runtime.sender.owner,
            lease=runtime.sender.lease,
        )
        claim(turn.menu_links, runtime.sender.owner, now, runtime.sender.lease)
        rows += turn.menu_links
    tag_ids.committed()
    if rows:
        runtime.sender.send_claimed(rows)
    return result
