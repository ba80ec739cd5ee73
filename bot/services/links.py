"""A click on a tracked link, recorded in the friend's turn (the token: `bot.engine.link_tokens`).

Every click is a `link_clicks` row; the link's `on_click` runs at most once per friend and
link within `STEPLINE_LINK_ACTIONS_WINDOW` (a `say` in it is a paid push: twenty reloads must
not be twenty messages). Both the once-only rule and the rate limit are decided from the
friend's own rows while the friend's row is locked (`lock_friend`; on SQLite the write
transaction), so two workers' concurrent clicks cannot both run the actions or both slip
under the limit.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from bot.engine.actions import run_actions
from bot.engine.link_tokens import Click
from bot.engine.turn import Turn
from bot.runtime import Runtime
from bot.services.errors import TooManyRequests
from bot.services.turns import FriendNotFound, run_turn
from storage.models import LinkClick

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(minutes=1)


def record_click(runtime: Runtime, click: Click) -> str | None:
    """In the friend's turn: a `link_clicks` row, then the link's `on_click` unless it ran for
    this friend and link within the window (messages go out as pushes after the commit).
    Returns the catalogue URL, or None (nothing recorded) when the friend is unknown or the
    link has just left the catalogue; `TooManyRequests` (nothing recorded) beyond the limit.

    A friend who blocked the account is recorded and their `on_click` runs like any change
    (tags, fields); the messages it says are not queued, as for every blocked friend."""
    settings = runtime.settings

    def act(turn: Turn) -> str | None:
        link = turn.catalogue.links.get(click.link)
        if link is None:
            return None
        session = turn.record.session
        mine = (LinkClick.friend_id == turn.record.friend.id, LinkClick.link == click.link)
        wait = _retry_after(session, mine, turn.now, settings.link_clicks_per_minute)
        if wait is not None:
            raise TooManyRequests(f"too many clicks on link {click.link!r}", retry_after=wait)
        run = not _ran_within(session, mine, turn.now - settings.link_actions_window)
        session.add(
            LinkClick(
                friend_id=turn.record.friend.id,
                link=click.link,
                source=click.source,
                clicked_at=turn.now,
                actions_ran=run,
            )
        )
        if run:
            run_actions(turn, link.on_click, f"link:{click.link}")
        runtime.dispatcher.finish(turn)  # a `clicked` condition may change the rich menu
        return link.url

    try:
        return run_turn(runtime, click.line_user_id, f"link:{click.link}", act)
    except FriendNotFound:
        log.info("tracked link %r: no such friend", click.link)
        return None


def _ran_within(session: Session, mine: tuple[ColumnElement[bool], ...], since: datetime) -> bool:
    """Did a click of this friend on this link after `since` run `on_click`?"""
    ran = exists().where(*mine, LinkClick.actions_ran.is_(True), LinkClick.clicked_at > since)
    return bool(session.scalar(select(ran)))


def _retry_after(
    session: Session, mine: tuple[ColumnElement[bool], ...], now: datetime, limit: int
) -> int | None:
    """Seconds until one more click fits the limit, or None when it fits now.

    The limit counts the friend's recorded clicks on the link, not requests per token or per
    process: the token only adds which message carried the link, so every token of one
    friend and link shares one budget, and the rows are what every gunicorn worker (and
    every host) sees alike, read under the friend's lock, exact without shared memory. An
    in-process counter would give each worker its own budget and forget it on a restart.
    Refused requests record nothing, so they never lengthen the wait."""
    recent = list(
        session.scalars(
            select(LinkClick.clicked_at)
            .where(*mine, LinkClick.clicked_at > now - RATE_WINDOW)
            .order_by(LinkClick.clicked_at.desc())
            .limit(limit)
        )
    )
    if len(recent) < limit:
        return None
    # When the oldest of the last `limit` clicks leaves the minute, one more fits.
    return max(1, math.ceil((recent[-1] + RATE_WINDOW - now).total_seconds()))
