"""A click on a tracked link, recorded in the friend's turn (the token: `bot.engine.link_tokens`)."""

from __future__ import annotations

import logging

from bot.engine.actions import run_actions
from bot.engine.link_tokens import Click
from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.turns import FriendNotFound, run_turn
from storage.models import LinkClick

log = logging.getLogger(__name__)


def record_click(runtime: Runtime, click: Click) -> str | None:
    """In the friend's turn: a `link_clicks` row, then the link's `on_click` (messages go out
    as pushes after the commit). Returns the catalogue URL, or None (nothing recorded) when
    the friend is unknown or the link has just left the catalogue.

    A friend who blocked the account is recorded and their `on_click` runs like any change
    (tags, fields); the messages it says are not queued, as for every blocked friend."""

    def act(turn: Turn) -> str | None:
        link = turn.catalogue.links.get(click.link)
        if link is None:
            return None
        turn.record.session.add(
            LinkClick(
                friend_id=turn.record.friend.id,
                link=click.link,
                source=click.source,
                clicked_at=turn.now,
            )
        )
        run_actions(turn, link.on_click, f"link:{click.link}")
        runtime.dispatcher.finish(turn)
        return link.url

    try:
        return run_turn(runtime, click.line_user_id, f"link:{click.link}", act)
    except FriendNotFound:
        log.info("tracked link %r: no such friend", click.link)
        return None
