"""Sending `richmenu` outbox rows: make LINE link each recipient's assigned menu.

A row names friends, not menus: the menu is read from `friends.rich_menu` when the row is
sent, so rows sent late or out of order still leave every friend on their latest menu. After
linking, the assignments are read again; a friend whose menu changed meanwhile is linked
again (up to a few rounds, then the row is retried later). `friends.rich_menu_id` records
what LINE was last told, so a friend already on the right menu costs no request.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, select, update

from bot.line.client import LineClient, LineRetryableError, SendResult
from bot.line.limits import MAX_BULK_LINK_USERS
from storage.db import Database
from storage.models import Friend, FriendStatus, RichMenuStatus, RichMenuVersion

MAX_ROUNDS = 3


class RichMenuLinker:
    def __init__(self, db: Database, line: LineClient) -> None:
        self.db = db
        self.line = line

    def link(self, user_ids: list[str]) -> SendResult:
        """Bring the users' linked menus in line with their assignments."""
        for _ in range(MAX_ROUNDS):
            plan = self.plan(user_ids)
            if not plan:
                return SendResult(request_id=None)
            for target, users in plan.items():
                for start in range(0, len(users), MAX_BULK_LINK_USERS):
                    group = users[start : start + MAX_BULK_LINK_USERS]
                    self.line.link_rich_menu(group, target)
                    self._record(group, target)
        raise LineRetryableError("rich menu assignments kept changing while linking; retrying")

    def plan(self, user_ids: list[str]) -> dict[str | None, list[str]]:
        """LINE rich menu id (None: unlink) → the users who should get it and do not have it.

        Blocked friends are left alone (LINE ignores them), and so are friends whose menu
        has not been created at LINE yet (`stepline richmenu sync` links them when it is)."""
        statement = (
            select(
                Friend.line_user_id, Friend.rich_menu, Friend.rich_menu_id, RichMenuVersion.line_id
            )
            .outerjoin(
                RichMenuVersion,
                and_(
                    RichMenuVersion.name == Friend.rich_menu,
                    RichMenuVersion.status == RichMenuStatus.ACTIVE,
                ),
            )
            .where(Friend.line_user_id.in_(user_ids))
            .where(Friend.status != FriendStatus.BLOCKED)
            .order_by(Friend.id)
        )
        plan: dict[str | None, list[str]] = defaultdict(list)
        with self.db.read() as session:
            for user_id, assigned, linked, line_id in session.execute(statement):
                if assigned is not None and line_id is None:
                    continue
                wanted = line_id if assigned is not None else None
                if wanted != linked:
                    plan[wanted].append(user_id)
        return dict(plan)

    def _record(self, user_ids: list[str], target: str | None) -> None:
        with self.db.write_core() as connection:
            connection.execute(
                update(Friend).where(Friend.line_user_id.in_(user_ids)).values(rich_menu_id=target)
            )
