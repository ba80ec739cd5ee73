"""`stepline richmenu sync`: make LINE's rich menus, aliases and default match the catalogue,
then re-link every friend whose menu changed.

Idempotent by content: each menu's LINE object and image are hashed; a menu whose hash is
already active at LINE is kept; a changed one is created anew (its LINE name carries the hash,
so a menu created by a sync that died before recording it is found and cleaned up), aliases
are moved to it, friends re-linked in bulk (≤ 500 per request, through the outbox), and the
old version deleted once nobody is left on it (and no link request is waiting). Creating and
deleting rich menus is limited by LINE to 100 requests an hour: a 429 is retried after short
pauses, then sync stops and says when to run it again (it continues where it stopped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, literal, null, select, update

from bot.catalogue.catalogue import Catalogue
from bot.catalogue.models import RichMenuDoc
from bot.catalogue.richmenu_definition import content_hash, menu_image, menu_object
from bot.delivery.outbox import claim, queue_menu_links
from bot.line.client import LineClient, LineError, LineRateLimited, LineRejected
from bot.runtime import Runtime
from bot.segments.compile import segment_clause
from storage.models import (
    Friend,
    FriendStatus,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    RichMenuStatus,
    RichMenuVersion,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
HOURLY_LIMIT = 100  # LINE: create / delete rich menu, delete alias: 100 requests an hour
NAME_SEPARATOR = "@"  # LINE name of a version: "<menu>@<first 12 of its hash>"
MAX_WAITS = 3  # short pauses for a passing 429 (5, 10, 20 s) before giving up


def line_name(menu: str, digest: str) -> str:
    return f"{menu}{NAME_SEPARATOR}{digest[:12]}"


@dataclass
class MenuStep:
    """What sync does with one catalogue menu: keep its active version or create a new one."""

    name: str
    action: str  # keep | create | replace
    digest: str
    line_id: str | None = None  # kept: the LINE id; created: filled when done


@dataclass
class SyncPlan:
    catalogue: Catalogue  # the catalogue planned from: apply uses it, whatever reloads meanwhile
    menus: list[MenuStep] = field(default_factory=list)
    retire: list[RichMenuVersion] = field(default_factory=list)  # menus gone from the catalogue
    orphans: list[str] = field(default_factory=list)  # ours at LINE, never recorded: deleted
    stale: list[RichMenuVersion] = field(default_factory=list)  # retired, still at LINE
    aliases: list[tuple[str, str, str]] = field(default_factory=list)  # (op, alias, menu)
    default: tuple[str, str | None] | None = None  # ("set", menu) | ("cancel", None)

    @property
    def changes_at_line(self) -> int:
        """Requests that count against LINE's 100-an-hour limit."""
        creates = sum(1 for step in self.menus if step.action != "keep")
        deletes = len(self.retire) + len(self.orphans) + len(self.stale)
        alias_deletes = sum(1 for op, _, _ in self.aliases if op == "delete")
        return creates + deletes + alias_deletes

    def describe(self) -> list[str]:
        lines = []
        for step in self.menus:
            verb = {"keep": "unchanged", "create": "create", "replace": "changed: re-create"}
            lines.append(f"menu {step.name}: {verb[step.action]}")
        lines += [f"menu {v.name}: no longer in the catalogue: delete" for v in self.retire]
        lines += [f"old version {v.name} ({v.line_id}): delete" for v in self.stale]
        lines += [
            f"unrecorded menu {line_id} from an interrupted sync: delete"
            for line_id in self.orphans
        ]
        lines += [f"alias {alias}: {op} → {menu}" for op, alias, menu in self.aliases]
        if self.default is not None:
            op, menu = self.default
            lines.append(f"default menu: {'set to ' + str(menu) if op == 'set' else 'cancel'}")
        return lines


@dataclass
class SyncResult:
    plan: SyncPlan
    relinked: int = 0  # friends whose menu at LINE was changed
    unsent: int = 0  # link rows left to the worker (retries pending)
    deleted: list[str] = field(default_factory=list)


class RichMenuSync:
    def __init__(
        self,
        runtime: Runtime,
        *,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.line: LineClient = runtime.line
        self.sleep = sleep
        self.progress = progress

    # ------------------------------------------------------------------ plan

    def plan(self) -> SyncPlan:
        catalogue = self.runtime.catalogue
        folder = catalogue.folder
        plan = SyncPlan(catalogue)
        with self.runtime.db.read() as session:
            versions = list(
                session.scalars(
                    select(RichMenuVersion).where(RichMenuVersion.status != RichMenuStatus.DELETED)
                )
            )
        at_line = self.line.rich_menu_names()
        known_ids = {v.line_id for v in versions}
        active = {v.name: v for v in versions if v.status == RichMenuStatus.ACTIVE}
        for name, menu in catalogue.rich_menus.items():
            digest = content_hash(menu, folder)
            current = active.get(name)
            if (
                current is not None
                and current.content_hash == digest
                and current.line_id in at_line
            ):
                plan.menus.append(MenuStep(name, "keep", digest, current.line_id))
            else:
                plan.menus.append(MenuStep(name, "replace" if current else "create", digest))
        plan.retire = [v for n, v in active.items() if n not in catalogue.rich_menus]
        plan.stale = [v for v in versions if v.status == RichMenuStatus.RETIRED]
        plan.orphans = [
            line_id
            for line_id, line_name_ in at_line.items()
            if line_id not in known_ids and _ours(line_name_, catalogue.rich_menus)
        ]
        self._plan_aliases(plan, {v.line_id for v in versions})
        self._plan_default(plan, {v.line_id for v in versions})
        return plan

    def _plan_aliases(self, plan: SyncPlan, ours: set[str]) -> None:
        current = self.line.rich_menu_aliases()
        steps = {step.name: step for step in plan.menus}
        wanted: dict[str, str] = {}
        for name, menu in plan.catalogue.rich_menus.items():
            if menu.alias is None:
                continue
            wanted[menu.alias] = name
            step = steps[name]
            if menu.alias not in current:
                plan.aliases.append(("create", menu.alias, name))
            elif step.action != "keep" or current[menu.alias] != step.line_id:
                plan.aliases.append(("update", menu.alias, name))
        for alias, line_id in current.items():
            if alias not in wanted and line_id in ours:
                plan.aliases.append(("delete", alias, "-"))

    def _plan_default(self, plan: SyncPlan, ours: set[str]) -> None:
        wanted = next((m for m in plan.catalogue.rich_menus.values() if m.default), None)
        current = self.line.default_rich_menu()
        if wanted is None:
            if current is not None and current in ours:
                plan.default = ("cancel", None)
            return
        step = next(s for s in plan.menus if s.name == wanted.rich_menu)
        if step.action != "keep" or current != step.line_id:
            plan.default = ("set", wanted.rich_menu)

    # ------------------------------------------------------------------ apply

    def apply(self, plan: SyncPlan) -> SyncResult:
        result = SyncResult(plan)
        catalogue = plan.catalogue
        for line_id in plan.orphans:
            self._limited(self.line.delete_rich_menu, line_id)
        for step in plan.menus:
            if step.action != "keep":
                menu = catalogue.rich_menus[step.name]
                step.line_id = self._create(menu, step.digest, catalogue.folder)
        ids = {step.name: step.line_id for step in plan.menus}
        for op, alias, name in plan.aliases:
            if op == "create":
                self.line.create_rich_menu_alias(alias, str(ids[name]))
            elif op == "update":
                self.line.update_rich_menu_alias(alias, str(ids[name]))
            else:
                self._limited(self.line.delete_rich_menu_alias, alias)
        if plan.default is not None:
            op, default = plan.default
            if op == "set" and default is not None:
                self.line.set_default_rich_menu(str(ids[default]))
            else:
                self.line.cancel_default_rich_menu()
        self._retire(plan.retire)
        result.relinked, result.unsent = self.relink(catalogue)
        result.deleted = self._delete_retired()
        return result

    def _create(self, menu: RichMenuDoc, digest: str, folder: Path | None) -> str:
        """Create one version at LINE (menu, image), record it active, retire the old one."""
        image = menu_image(menu, folder)
        digest = content_hash(menu, folder)  # of what is sent now (the file may have changed)
        body = {**menu_object(menu), "name": line_name(menu.rich_menu, digest)}
        line_id = self._limited(self.line.create_rich_menu, body)
        self.line.set_rich_menu_image(line_id, image.data, image.content_type)
        now = self.runtime.clock.now()
        with self.runtime.db.write() as session:
            session.execute(
                update(RichMenuVersion)
                .where(
                    RichMenuVersion.name == menu.rich_menu,
                    RichMenuVersion.status == RichMenuStatus.ACTIVE,
                )
                .values(status=RichMenuStatus.RETIRED, retired_at=now)
            )
            session.add(
                RichMenuVersion(
                    name=menu.rich_menu,
                    content_hash=digest,
                    line_id=line_id,
                    status=RichMenuStatus.ACTIVE,
                    created_at=now,
                )
            )
        log.info("rich menu %s created at LINE as %s", menu.rich_menu, line_id)
        return line_id

    def _retire(self, versions: list[RichMenuVersion]) -> None:
        if not versions:
            return
        now = self.runtime.clock.now()
        with self.runtime.db.write() as session:
            session.execute(
                update(RichMenuVersion)
                .where(RichMenuVersion.id.in_([v.id for v in versions]))
                .values(status=RichMenuStatus.RETIRED, retired_at=now)
            )

    def _delete_retired(self) -> list[str]:
        """Delete at LINE the retired versions nobody is on any more. While any link row is
        still to be sent (a retry, a friend's change), nothing is deleted: the next sync does
        it, so no friend is ever left on a deleted menu."""
        with self.runtime.db.read() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.kind == OutboxKind.RICHMENU,
                    OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
                )
            )
            if waiting:
                return []
            still_on = select(Friend.id).where(
                Friend.status == FriendStatus.FOLLOWING,
                Friend.rich_menu_id == RichMenuVersion.line_id,
            )
            retired = list(
                session.scalars(
                    select(RichMenuVersion).where(
                        RichMenuVersion.status == RichMenuStatus.RETIRED, ~still_on.exists()
                    )
                )
            )
        deleted = []
        for version in retired:
            self._limited(self.line.delete_rich_menu, version.line_id, missing_ok=True)
            with self.runtime.db.write() as session:
                session.execute(
                    update(RichMenuVersion)
                    .where(RichMenuVersion.id == version.id)
                    .values(status=RichMenuStatus.DELETED)
                )
            deleted.append(version.line_id)
        return deleted

    # ------------------------------------------------------------------ friends

    def reassign(self, catalogue: Catalogue) -> None:
        """Evaluate every friend's `show_when` rules in SQL (first match wins); a friend whose
        rules' choice changed gets that menu; a menu the catalogue dropped is replaced."""
        runtime = self.runtime
        now = runtime.clock.now()
        whens = [
            (
                segment_clause(m.show_when, catalogue=catalogue, tz=runtime.settings.tz, now=now),
                name,
            )
            for name, m in catalogue.rich_menus.items()
            if m.show_when is not None
        ]
        choice: Any = case(*whens, else_=null()) if whens else null()
        names = list(catalogue.rich_menus)
        with runtime.db.write() as session:
            session.execute(
                update(Friend)
                .where(Friend.rich_menu_rule.is_distinct_from(choice))
                .values(rich_menu_rule=choice, rich_menu=choice)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(Friend)
                .where(Friend.rich_menu.is_not(None), Friend.rich_menu.not_in(names or [""]))
                .values(rich_menu=Friend.rich_menu_rule)
                .execution_options(synchronize_session=False)
            )

    def relink(self, catalogue: Catalogue) -> tuple[int, int]:
        """Queue and send bulk links for every following friend not on their menu at LINE:
        (friends re-linked, rows left unsent for the worker to retry).

        The rows are written already claimed by this process's sender, so a running worker
        does not take them meanwhile; friends whose own link row is waiting are left to it
        (two rows of one friend in flight could reach LINE in the wrong order)."""
        self.reassign(catalogue)
        runtime = self.runtime
        own_row = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.kind == OutboxKind.RICHMENU,
                OutboxMessage.friend_id == Friend.id,
                OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            )
            .exists()
        )
        wanted = (
            select(RichMenuVersion.line_id)
            .where(
                RichMenuVersion.name == Friend.rich_menu,
                RichMenuVersion.status == RichMenuStatus.ACTIVE,
            )
            .scalar_subquery()
        )
        mismatch = select(Friend.line_user_id).where(
            Friend.status == FriendStatus.FOLLOWING,
            func.coalesce(wanted, literal("")) != func.coalesce(Friend.rich_menu_id, literal("")),
            # a friend assigned a menu LINE does not have yet is left for a later sync
            ~and_(Friend.rich_menu.is_not(None), wanted.is_(None)),
            ~own_row,
        )
        now = runtime.clock.now()
        sender = runtime.sender
        with runtime.db.write() as session:
            user_ids = list(session.scalars(mismatch.order_by(Friend.id)))
            rows = queue_menu_links(session, user_ids, cause="richmenu:sync", now=now)
            claim(rows, sender.owner, now, sender.lease)
        unsent = 0
        for done, row in enumerate(rows, start=1):
            outcomes = sender.send_claimed([row])
            unsent += sum(1 for o in outcomes if o.status != "sent")
            if self.progress is not None:
                self.progress(done, len(rows))
        return len(user_ids), unsent

    # ------------------------------------------------------------------ rate limits

    def _limited(self, call: Callable[..., T], *args: Any, missing_ok: bool = False) -> T:
        """Call an endpoint LINE limits to 100 an hour. A 429 is retried a few times after a
        short pause (LINE's `Retry-After` if it sends one); if LINE still refuses, the hour's
        allowance is spent: stop and say when to run sync again (it continues from there)."""
        wait = 5.0
        for attempt in range(MAX_WAITS + 1):
            try:
                return call(*args)
            except LineRateLimited as exc:
                if attempt == MAX_WAITS:
                    raise HourlyLimitReached(self.runtime.clock.now()) from exc
                pause = exc.retry_after if exc.retry_after is not None else wait
                log.warning("LINE rate limit (%s); waiting %.0f s", exc, pause)
                self.sleep(pause)
                wait *= 2
            except LineRejected as exc:
                if missing_ok and exc.status == 404:
                    return None  # type: ignore[return-value]
                raise
        raise AssertionError("unreachable")


class HourlyLimitReached(LineError):
    """LINE's 100-an-hour allowance for creating/deleting rich menus is spent."""

    def __init__(self, now: datetime) -> None:
        again = (now + timedelta(hours=1)).strftime("%H:%M UTC")
        super().__init__(
            f"LINE allows {HOURLY_LIMIT} rich menu creations/deletions an hour and refuses more"
            f" now; run `stepline richmenu sync` again after {again}: it continues where it"
            " stopped (what was created is recorded)"
        )


def pending_links(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.kind == OutboxKind.RICHMENU,
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
            )
            or 0
        )


def _ours(name: str | None, menus: dict[str, RichMenuDoc]) -> bool:
    """A LINE menu named like a version of one of the catalogue's menus."""
    if not name or NAME_SEPARATOR not in name:
        return False
    menu, _, digest = name.rpartition(NAME_SEPARATOR)
    return menu in menus and len(digest) == 12 and all(c in "0123456789abcdef" for c in digest)
