"""Turns: the friend's row locked (`bot.engine.friend_record.lock_friend`), the engine run,
and the one end of every turn.

`finish_turns` is how every caller — a webhook event, the admin API, a tracked link, a timeout,
a sequence step, a personal broadcast — ends one friend's turn (or a batch of them) in its
transaction: the messages the engine produced are queued (a free reply while the turn holds a
reply token, pushes otherwise; with `group`, friends who got exactly the same messages share
multicasts), a rich-menu link is queued when the engine changed the friend's menu, and what
goes out right after the commit is claimed by this process's sender.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.delivery.outbox import (
    claim,
    queue_for_friend,
    queue_grouped,
    queue_menu_link,
    record_skipped,
)
from bot.engine.friend_record import lock_friend
from bot.engine.turn import Turn
from bot.runtime import Runtime
from storage.models import OutboxMessage

T = TypeVar("T")


class FriendNotFound(LookupError):
    """No friend with that LINE user id."""


def finish_turns(
    runtime: Runtime,
    session: Session,
    turns: Sequence[Turn],
    *,
    now: datetime,
    claim_rows: bool = True,
    group: bool = False,
    cause: str | None = None,
    broadcast_id: int | None = None,
) -> list[OutboxMessage]:
    """End these turns in the caller's transaction; returns the rows to send after the commit.

    `claim_rows=False` leaves every row pending for the worker (a dry run's rows are never
    claimed); `group` lets friends who got identical messages share multicasts (a sequence
    step); `cause` names the grouped rows' cause when it is not the turns' own (the bulk
    path's `sequence:<name>/<step>`); `broadcast_id` marks the rows as that broadcast's."""
    if group and (broadcast_id is not None or any(turn.reply_token for turn in turns)):
        raise ValueError("grouped turns are pushes and multicasts: no reply token, no broadcast")
    if not claim_rows and any(turn.link_menu for turn in turns):
        # Unclaimed rows are a dry run's: a rich-menu link would really be sent by the worker.
        raise ValueError("a turn that changed the friend's rich menu cannot end unclaimed")
    owner = runtime.sender.owner if claim_rows else None
    lease = runtime.sender.lease
    rows: list[OutboxMessage] = []
    if group:
        planned = [(turn.record.friend, turn.outgoing) for turn in turns]
        rows += queue_grouped(
            session,
            planned,
            cause=cause or (turns[0].cause if turns else ""),
            now=now,
            claim_for=owner,
            lease=lease,
        )
    else:
        for turn in turns:
            rows += queue_for_friend(
                session,
                turn.record.friend,
                turn.outgoing,
                reply_token=turn.reply_token,
                cause=turn.cause,
                now=now,
                claim_for=owner,
                lease=lease,
                broadcast_id=broadcast_id,
            )
    for turn in turns:  # what the engine decided not to send is recorded, never sent
        for skipped in turn.skipped:
            record_skipped(
                session,
                turn.record.friend,
                skipped.messages,
                cause=skipped.cause,
                due_at=skipped.due_at,
                now=now,
                reason=skipped.reason,
            )
        turn.skipped.clear()
    # A changed rich menu is linked right away too (LINE shows it at once), unless a link of
    # this friend is already on its way (then the worker sends this one after it).
    for turn in turns:
        if not turn.link_menu:
            continue
        turn.link_menu = False
        row, send_now = queue_menu_link(session, turn.record.friend, cause=turn.cause, now=now)
        if row is not None and send_now and owner is not None:
            claim([row], owner, now, lease)
            rows.append(row)
    return rows


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
        rows = finish_turns(runtime, session, [turn], now=now)
    tag_ids.committed()
    if rows:
        runtime.sender.send_claimed(rows)
    return result
