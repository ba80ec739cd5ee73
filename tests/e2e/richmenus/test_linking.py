"""`richmenu` outbox rows: the menu is read when the row is sent, one friend's rows are never
in flight together, and a friend already on the right menu costs no request."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.delivery.outbox import queue_menu_link
from storage.models import Friend, OutboxMessage
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.e2e.richmenus.test_sync import MENUS_YAML, active_ids, menu_of, requests_to, sync
from tests.support import Stack


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    folder = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, folder)
    (folder / "menus.yaml").write_text(MENUS_YAML, encoding="utf-8")
    started = make_stack(folder)
    sync(started)
    return started


def assign(stack: Stack, user_id: str, menu: str | None) -> int | None:
    """Assign a menu the way a turn does and queue its link row; the row's id."""
    now = stack.clock.now()
    with stack.db.write() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user_id)).one()
        friend.rich_menu = menu
        row, _ = queue_menu_link(session, friend, cause="test", now=now)
        return row.id if row is not None else None


def test_rows_of_one_friend_are_never_in_flight_together(stack: Stack) -> None:
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    sender = stack.runtime.sender
    first = assign(stack, user.user_id, "member")
    assert assign(stack, user.user_id, "vip") is None  # the pending row covers the change
    claimed = sender.claim_due(10)
    assert [row.id for row in claimed] == [first]

    second = assign(stack, user.user_id, "member")  # while the first is being sent
    assert second is not None
    assert sender.claim_due(10) == []  # not taken while the friend's other row is in flight

    sender.send_claimed(claimed)  # sends what the friend should see now: member
    assert menu_of(stack, user) == ids["member"]
    before = len(requests_to(stack, f"/v2/bot/user/{user.user_id}/richmenu/{ids['member']}"))
    outcomes = sender.send_claimed(sender.claim_due(10))
    assert [o.status for o in outcomes] == ["sent"]
    after = len(requests_to(stack, f"/v2/bot/user/{user.user_id}/richmenu/{ids['member']}"))
    assert after == before == 1  # already on it: no second request


def test_the_menu_is_read_when_the_row_is_sent(stack: Stack) -> None:
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    assign(stack, user.user_id, "member")
    with stack.db.write() as session:  # changed after the row was queued
        session.execute(
            update(Friend).where(Friend.line_user_id == user.user_id).values(rich_menu="vip")
        )
    sender = stack.runtime.sender
    sender.send_claimed(sender.claim_due(10))
    assert menu_of(stack, user) == ids["vip"]
    with stack.db.read() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user.user_id)).one()
        assert friend.rich_menu_id == ids["vip"]
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "richmenu"))
        assert [row.status for row in rows] == ["sent"]


def test_a_blocked_friend_gets_no_link_until_they_come_back(stack: Stack) -> None:
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    user.unfollow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    with stack.db.read() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user.user_id)).one()
        assert friend.rich_menu == "member"  # assigned, for when they come back
        kinds = session.scalars(select(OutboxMessage.kind).where(OutboxMessage.kind == "richmenu"))
        assert list(kinds) == []
    user.follow()  # unblocked: their menu is linked at once
    assert menu_of(stack, user) == ids["member"]


def test_a_friend_back_after_blocking_is_unlinked_to_the_default(stack: Stack) -> None:
    """While blocked, what LINE keeps linked is unknown: on their return a friend assigned the
    default menu gets an unlink, not nothing."""
    user = stack.user()
    user.follow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    user.unfollow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"remove_tags": ["回答済み"]})
    user.follow()
    unlinks = [
        r
        for r in stack.emulator_get("/requests")["requests"]
        if r["method"] == "DELETE" and r["path"] == f"/v2/bot/user/{user.user_id}/richmenu"
    ]
    assert len(unlinks) == 1
    with stack.db.read() as session:
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user.user_id)).one()
        assert (friend.rich_menu, friend.rich_menu_id) == (None, None)


def test_a_pending_row_is_not_taken_while_a_turn_relies_on_it(stack: Stack) -> None:
    """The turn that finds a pending link row locks it until it commits (PostgreSQL), so a
    worker cannot send it with the assignment from before the turn."""
    if stack.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: a claim waits for the turn's commit")
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    assign(stack, user.user_id, "vip")  # a pending row, not sent yet
    sender = stack.runtime.sender
    with stack.db.write() as session:  # a turn changing the menu again, still open
        friend = session.scalars(select(Friend).where(Friend.line_user_id == user.user_id)).one()
        friend.rich_menu = "member"
        row, _ = queue_menu_link(session, friend, cause="turn", now=stack.clock.now())
        assert row is None  # the pending row covers it...
        taken: list[list[OutboxMessage]] = []
        worker = threading.Thread(target=lambda: taken.append(sender.claim_due(10)))
        worker.start()
        worker.join(timeout=30)
        assert taken == [[]]  # ...and no worker can take it before this commits
    sender.send_claimed(sender.claim_due(10))
    assert menu_of(stack, user) == ids["member"]
