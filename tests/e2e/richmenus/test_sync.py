"""Rich menus end to end: `richmenu sync` against the LINE emulator over real HTTP, friends'
menus following their tags, tab switches and area taps (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import insert, select

from bot.catalogue.richmenu_definition import tap_data
from bot.line.client import LineError
from bot.services.richmenu_sync import HourlyLimitReached, RichMenuSync, SyncResult
from storage.models import Friend, FriendTag, OutboxMessage, RichMenuVersion, Tag
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import TOKEN, LineUser, Stack

MENUS_YAML = """\
rich_menu: guest
alias: guest
default: true
areas:
  - {bounds: [0, 0, 1250, 250], label: はじめての方, tap: {switch: guest}}
  - {bounds: [1250, 0, 1250, 250], label: 会員メニュー, tap: {switch: member, do: [{tag: VIP}]}}
  - {bounds: [0, 250, 2500, 1436], label: アンケート, tap: {do: [{start_flow: welcome}]}}
---
rich_menu: member
alias: member
show_when: {tag: 回答済み}
areas:
  - {bounds: [0, 0, 1250, 250], label: はじめての方, tap: {switch: guest}}
  - {bounds: [1250, 0, 1250, 250], label: 会員メニュー, tap: {switch: member}}
  - bounds: [0, 250, 1250, 1436]
    label: 来店日
    tap: {datetime: date, save: visit_date, do: [{say: "{{ fields.visit_date | ymd }}ですね"}]}
  - {bounds: [1250, 250, 1250, 1436], label: ポイント, tap: {do: [{say: "{{ fields.points }}pt"}]}}
---
rich_menu: vip
areas:
  - {bounds: [0, 0, 2500, 1686], label: VIP, tap: {message: VIP}}
---
flow: vip_menu
start_on: [{keyword: 特別}]
steps:
  - ask: ok
    text: 特別メニューにしますか?
    choices: [{label: はい, do: [{rich_menu: vip}]}]
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, folder)
    (folder / "menus.yaml").write_text(MENUS_YAML, encoding="utf-8")
    return folder


@pytest.fixture
def stack(make_stack: StackFactory, flows: Path) -> Stack:
    return make_stack(flows)


def tap(stack: Stack, menu: str, index: int) -> str:
    """The postback data LINE sends when the area is tapped (as in the menu object)."""
    return tap_data(menu, index, stack.runtime.catalogue.rich_menus[menu].areas[index])


def line_get(stack: Stack, path: str) -> requests.Response:
    """A Messaging API GET at the emulator, as LINE answers it."""
    return requests.get(
        f"{stack.emulator.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )


def menu_of(stack: Stack, user: LineUser | str) -> str | None:
    """The rich menu id LINE has linked to the user (None: none, the default shows)."""
    user_id = user if isinstance(user, str) else user.user_id
    response = line_get(stack, f"/v2/bot/user/{user_id}/richmenu")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return str(response.json()["richMenuId"])


def line_menus(stack: Stack) -> dict[str, str]:
    """LINE rich menu id → name, for every menu at the emulator."""
    response = line_get(stack, "/v2/bot/richmenu/list")
    response.raise_for_status()
    return {m["richMenuId"]: m["name"] for m in response.json()["richmenus"]}


def aliases(stack: Stack) -> dict[str, str]:
    response = line_get(stack, "/v2/bot/richmenu/alias/list")
    response.raise_for_status()
    return {a["richMenuAliasId"]: a["richMenuId"] for a in response.json()["aliases"]}


def active_ids(stack: Stack) -> dict[str, str]:
    with stack.db.read() as session:
        rows = session.scalars(select(RichMenuVersion).where(RichMenuVersion.status == "active"))
        return {row.name: row.line_id for row in rows}


def sync(stack: Stack) -> SyncResult:
    runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
    return runner.apply(runner.plan())


def requests_to(stack: Stack, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.emulator_get(f"/requests?path={path}&method=POST")[
        "requests"
    ]
    return found


def test_sync_creates_menus_aliases_and_default_and_a_second_sync_does_nothing(
    stack: Stack,
) -> None:
    first = sync(stack)
    ids = active_ids(stack)
    assert set(ids) == {"guest", "member", "vip"}
    assert [step.action for step in first.plan.menus] == ["create", "create", "create"]
    assert set(line_menus(stack)) == set(ids.values())
    assert aliases(stack) == {"guest": ids["guest"], "member": ids["member"]}
    assert line_get(stack, "/v2/bot/user/all/richmenu").json()["richMenuId"] == ids["guest"]
    created = len(requests_to(stack, "/v2/bot/richmenu"))
    assert created == 3

    runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
    plan = runner.plan()
    assert [step.action for step in plan.menus] == ["keep", "keep", "keep"]
    assert plan.aliases == [] and plan.default is None and plan.changes_at_line == 0
    second = runner.apply(plan)
    assert second.relinked == 0 and second.deleted == []
    assert len(requests_to(stack, "/v2/bot/richmenu")) == created
    assert active_ids(stack) == ids


def test_a_friend_whose_tag_changes_sees_the_other_menu(stack: Stack) -> None:
    sync(stack)
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    assert menu_of(stack, user) is None  # the default (guest) shows; nothing linked

    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    assert response.status_code == 200, response.text
    assert menu_of(stack, user) == ids["member"]
    assert stack.friend(user)["rich_menu"] == "member"

    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"remove_tags": ["回答済み"]})
    assert response.status_code == 200, response.text
    assert menu_of(stack, user) is None
    links = requests_to(stack, f"/v2/bot/user/{user.user_id}/richmenu/{ids['member']}")
    assert len(links) == 1  # linked once, not on every change


def test_an_unrelated_change_links_nothing(stack: Stack) -> None:
    sync(stack)
    user = stack.user()
    user.follow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    before = len(stack.emulator_get("/requests")["requests"])
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["腰痛"]})
    after = [
        r for r in stack.emulator_get("/requests")["requests"][before:] if "richmenu" in r["path"]
    ]
    assert after == []


def test_tapping_an_area_starts_the_flow(stack: Stack) -> None:
    sync(stack)
    user = stack.user()
    user.follow()
    user.received()  # the welcome question of the follow
    user.postback(tap(stack, "guest", 2))
    texts = user.texts()
    assert texts and "性別" in texts[-1]


def test_a_tab_switch_postback_runs_the_area_actions(stack: Stack) -> None:
    sync(stack)
    user = stack.user()
    user.follow()
    user.postback(tap(stack, "guest", 1), {"newRichMenuAliasId": "member", "status": "SUCCESS"})
    assert "VIP" in stack.friend(user)["tags"]


def test_a_date_picked_on_the_menu_is_saved(stack: Stack) -> None:
    sync(stack)
    user = stack.user()
    user.follow()
    user.postback(tap(stack, "member", 2), {"date": "2026-12-24"})
    assert stack.friend(user)["fields"]["visit_date"] == "2026-12-24"
    # The area's reply, then the welcome question again (the menu tap hid its quick replies).
    assert user.texts()[-2:] == ["2026年12月24日ですね", "花子さん、性別を教えてください"]


def test_a_postback_that_is_not_ours_is_ignored(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.engine.taps")
    sync(stack)
    user = stack.user()
    user.follow()
    before = stack.friend(user)
    user.postback("rm1|nosuchmenu|0|00000000")
    user.postback("rm1|guest|99|00000000")
    user.postback(tap(stack, "guest", 2).rsplit("|", 1)[0] + "|0badcafe")  # an older version
    assert stack.friend(user)["tags"] == before["tags"]
    ignored = [r for r in caplog.records if "not in the catalogue; ignored" in r.getMessage()]
    assert len(ignored) == 3
    assert stack.friend(user)["conversation"] == before["conversation"]


def test_the_rich_menu_action_forces_a_menu(stack: Stack) -> None:
    sync(stack)
    ids = active_ids(stack)
    user = stack.user()
    user.follow()
    user.say("特別")
    user.tap("はい")
    assert menu_of(stack, user) == ids["vip"]


def test_a_changed_menu_is_recreated_and_its_friends_relinked(stack: Stack, flows: Path) -> None:
    sync(stack)
    old = active_ids(stack)
    user = stack.user()
    user.follow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    assert menu_of(stack, user) == old["member"]

    path = flows / "menus.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("ポイント", "ポイント確認"), "utf-8")
    assert stack.runtime.catalogues.reload().ok

    result = sync(stack)
    new = active_ids(stack)
    assert [s.action for s in result.plan.menus] == ["keep", "replace", "keep"]
    assert new["member"] != old["member"] and new["guest"] == old["guest"]
    assert menu_of(stack, user) == new["member"]
    assert aliases(stack)["member"] == new["member"]
    assert old["member"] not in line_menus(stack)  # the old version is deleted at LINE
    assert result.deleted == [old["member"]]


def seed_members(stack: Stack, count: int) -> list[str]:
    """`count` friends tagged 回答済み, written straight to the database (and known to the
    emulator as friends), as an import would; their menus are not linked yet."""
    user_ids = [f"U{n:032x}" for n in range(1, count + 1)]
    requests.post(
        f"{stack.emulator.url}/_emulator/users/bulk", json={"user_ids": user_ids}, timeout=30
    ).raise_for_status()
    now = stack.clock.now()
    with stack.db.write() as session:
        tag = session.scalar(select(Tag).where(Tag.name == "回答済み"))
        if tag is None:
            tag = Tag(name="回答済み")
            session.add(tag)
            session.flush()
        session.execute(
            insert(Friend),
            [
                {"line_user_id": uid, "display_name": "", "status": "following", "created_at": now}
                for uid in user_ids
            ],
        )
        friend_ids = session.scalars(select(Friend.id).where(Friend.line_user_id.in_(user_ids)))
        session.execute(
            insert(FriendTag),
            [
                {"friend_id": f, "tag_id": tag.id, "added_at": now, "reason": "test"}
                for f in friend_ids
            ],
        )
    return user_ids


def test_1200_friends_are_relinked_in_bulk_batches(stack: Stack) -> None:
    sync(stack)
    user_ids = seed_members(stack, 1200)

    result = sync(stack)  # the rules are evaluated in SQL for everyone, then bulk links
    assert result.relinked == 1200 and result.unsent == 0
    bulk = requests_to(stack, "/v2/bot/richmenu/bulk/link")
    assert [len(r["body"]["userIds"]) for r in bulk] == [500, 500, 200]
    member = active_ids(stack)["member"]
    assert {menu_of(stack, uid) for uid in (user_ids[0], user_ids[700], user_ids[-1])} == {member}
    assert sync(stack).relinked == 0


def fault(stack: Stack, **spec: Any) -> None:
    requests.post(
        f"{stack.emulator.url}/_emulator/faults", json=spec, timeout=10
    ).raise_for_status()


def test_a_failed_link_is_retried_until_line_accepts_it(stack: Stack) -> None:
    sync(stack)
    member = active_ids(stack)["member"]
    user = stack.user()
    user.follow()
    fault(stack, path=f"/v2/bot/user/{user.user_id}/richmenu/{member}", status=500, times=2)
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    assert menu_of(stack, user) is None  # LINE answered 500: the row waits for a retry
    sender = stack.runtime.sender
    for _ in range(3):
        stack.clock.advance(timedelta(minutes=10))
        sender.send_claimed(sender.claim_due(10))
    assert menu_of(stack, user) == member
    with stack.db.read() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "richmenu"))
        assert [(row.status, row.attempts) for row in rows] == [("sent", 3)]


def test_a_sync_interrupted_by_line_continues_without_duplicates(stack: Stack) -> None:
    fault(stack, path="/v2/bot/richmenu/alias", status=500, times=1)
    with pytest.raises(LineError):
        sync(stack)
    created = len(requests_to(stack, "/v2/bot/richmenu"))
    assert created == 3  # the menus were made and recorded before the alias failed
    result = sync(stack)
    assert [step.action for step in result.plan.menus] == ["keep", "keep", "keep"]
    assert len(requests_to(stack, "/v2/bot/richmenu")) == created
    ids = active_ids(stack)
    assert aliases(stack) == {"guest": ids["guest"], "member": ids["member"]}
    assert len(line_menus(stack)) == 3


def test_a_menu_recorded_nowhere_is_cleaned_up(stack: Stack) -> None:
    """A sync that died between LINE creating the menu and the row being written leaves a
    menu at LINE that no row names: the next sync deletes it (found by its name)."""
    sync(stack)
    with stack.db.write() as session:
        version = session.scalars(
            select(RichMenuVersion).where(RichMenuVersion.name == "vip")
        ).one()
        orphan = version.line_id
        session.delete(version)
    result = sync(stack)
    assert result.plan.orphans == [orphan]
    assert [step.action for step in result.plan.menus] == ["keep", "keep", "create"]
    assert orphan not in line_menus(stack)
    assert len(line_menus(stack)) == 3


def test_sync_dry_run_prints_the_plan_and_changes_nothing(stack: Stack) -> None:
    runner = RichMenuSync(stack.runtime)
    plan = runner.plan()
    assert plan.describe()[:3] == ["menu guest: create", "menu member: create", "menu vip: create"]
    assert line_menus(stack) == {}


def test_a_running_worker_cannot_make_sync_delete_a_menu_friends_are_on(stack: Stack) -> None:
    """Sync's bulk link rows are its own from the start: a worker ticking between two of its
    requests cannot take the next one, so the old version is deleted only once every friend
    is on the new one."""
    user_ids = seed_members(stack, 600)  # two bulk link requests
    sync(stack)
    old = active_ids(stack)["member"]
    path = stack.runtime.settings.flows_dir / "menus.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("ポイント", "ポイント確認"), "utf-8")
    assert stack.runtime.catalogues.reload().ok
    runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
    worker_took: list[int] = []

    def worker_tick(done: int, total: int) -> None:  # runs between sync's own requests
        worker_took.extend(row.id for row in stack.runtime.sender.claim_due(10))

    runner.progress = worker_tick
    result = runner.apply(runner.plan())
    assert worker_took == [] and result.relinked == 600
    new = active_ids(stack)["member"]
    assert {menu_of(stack, uid) for uid in (user_ids[0], user_ids[-1])} == {new}
    assert result.deleted == [old]


def test_old_versions_wait_while_a_link_is_still_to_be_retried(stack: Stack) -> None:
    sync(stack)
    user = stack.user()
    user.follow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    old = active_ids(stack)["member"]
    path = stack.runtime.settings.flows_dir / "menus.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("ポイント", "ポイント確認"), "utf-8")
    assert stack.runtime.catalogues.reload().ok
    chaos = {"rates": {"5xx": 1.0}, "paths": ["/v2/bot/user/*/richmenu/*"]}
    requests.put(f"{stack.emulator.url}/_emulator/chaos", json=chaos, timeout=10).raise_for_status()
    result = sync(stack)
    assert result.unsent == 1 and result.deleted == []
    assert old in line_menus(stack)  # the friend is still on it
    assert menu_of(stack, user) == old
    requests.delete(f"{stack.emulator.url}/_emulator/chaos", timeout=10).raise_for_status()
    stack.clock.advance(timedelta(minutes=10))
    sender = stack.runtime.sender
    sender.send_claimed(sender.claim_due(10))
    assert menu_of(stack, user) == active_ids(stack)["member"]
    assert sync(stack).deleted == [old]


def test_a_reload_between_plan_and_apply_uses_the_planned_catalogue(
    stack: Stack, flows: Path
) -> None:
    runner = RichMenuSync(stack.runtime, sleep=lambda seconds: None)
    plan = runner.plan()
    path = flows / "menus.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text[: text.index("rich_menu: vip")]
        + text[text.index("flow: vip_menu") :].replace("{rich_menu: vip}", "{tag: VIP}"),
        "utf-8",
    )
    assert stack.runtime.catalogues.reload().ok
    result = runner.apply(plan)  # what was planned, not a KeyError
    assert set(active_ids(stack)) == {"guest", "member", "vip"}
    assert result.plan is plan
    again = sync(stack)  # the next sync sees vip gone
    assert [v.name for v in again.plan.retire] == ["vip"]
    assert set(active_ids(stack)) == {"guest", "member"}


def test_when_line_refuses_more_creations_sync_stops_and_says_when(stack: Stack) -> None:
    fault(stack, path="/v2/bot/richmenu", status=429, times=10)
    waits: list[float] = []
    runner = RichMenuSync(stack.runtime, sleep=waits.append)
    with pytest.raises(HourlyLimitReached, match=r"run `stepline richmenu sync` again after"):
        runner.apply(runner.plan())
    assert waits == [5.0, 10.0, 20.0]
    assert active_ids(stack) == {}
