"""Segment broadcasts end to end over real HTTP: the right friends (checked at the emulator),
dry run, cancel, a scheduled send firing once, a crash half-way resumed without duplicates,
bad input refused with nothing stored; reach and cost; audiences all or nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.delivery.worker import DeliveryWorker
from bot.services.broadcasts import Runner
from storage.models import OutboxMessage
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import LineUser, Stack

EXTRA = """\
tags: [VIP会員, 休眠]
"""


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "broadcast_tags.yaml").write_text(EXTRA, encoding="utf-8")
    return make_stack(flows)


def friends(stack: Stack, count: int) -> list[LineUser]:
    users = []
    for i in range(count):
        user = stack.user(f"友{i}")
        user.follow()
        user.received()
        users.append(user)
    return users


def tag(stack: Stack, user: LineUser, name: str) -> None:
    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": [name]})
    assert response.status_code == 200, response.text


def sync_send(stack: Stack) -> Callable[[list[OutboxMessage]], list[Future[Any]]]:
    def send(rows: list[OutboxMessage]) -> list[Future[Any]]:
        stack.runtime.sender.send_claimed(rows)
        return []

    return send


def run(stack: Stack) -> int:
    return Runner(stack.runtime, sync_send(stack)).run_due()


def got(stack: Stack, text: str) -> dict[str, int]:
    counts = requests.get(
        f"{stack.emulator.url}/_emulator/deliveries/counts",
        params={"via": "push,multicast"},
        timeout=10,
    ).json()
    return {user: c[text] for user, c in counts.items() if text in c}


def create(stack: Stack, **body: Any) -> int:
    body.setdefault("messages", [{"text": "冬のキャンペーンのお知らせ"}])
    response = stack.api("POST", "/broadcasts", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def status(stack: Stack, broadcast_id: int) -> dict[str, Any]:
    response = stack.api("GET", f"/broadcasts/{broadcast_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_broadcast_to_a_tag_segment_reaches_exactly_those_friends(stack: Stack) -> None:
    users = friends(stack, 5)
    for user in users[:3]:
        tag(stack, user, "VIP会員")
    users[2].unfollow()  # blocked: not a recipient
    broadcast_id = create(stack, segment={"tag": "VIP会員"})
    assert status(stack, broadcast_id)["status"] == "scheduled"
    assert run(stack) == 1
    assert got(stack, "冬のキャンペーンのお知らせ") == {users[0].user_id: 1, users[1].user_id: 1}
    result = status(stack, broadcast_id)
    assert (result["status"], result["planned"], result["accepted"], result["failed"]) == (
        "done",
        2,
        2,
        0,
    )
    assert run(stack) == 0  # nothing due any more; nothing sent twice
    assert got(stack, "冬のキャンペーンのお知らせ") == {users[0].user_id: 1, users[1].user_id: 1}


def test_many_batches_written_side_by_side_reach_everyone_once(stack: Stack) -> None:
    users = friends(stack, 13)
    users[4].unfollow()  # blocked after following: frozen out
    broadcast_id = create(stack, segment={"followed_within": "1d"})
    runner = Runner(stack.runtime, sync_send(stack))
    runner.batch = 2  # seven batches (the blocked friend is not frozen in)
    assert runner.run_due() == 1
    expected = {u.user_id: 1 for i, u in enumerate(users) if i != 4}
    assert got(stack, "冬のキャンペーンのお知らせ") == expected
    result = status(stack, broadcast_id)
    assert (result["status"], result["planned"], result["queued"], result["accepted"]) == (
        "done",
        12,
        12,
        12,
    )


def test_personal_messages_are_rendered_per_friend_as_pushes(stack: Stack) -> None:
    users = friends(stack, 2)
    broadcast_id = create(
        stack, segment={"not": {"tag": "休眠"}}, messages=[{"text": "{{ friend.name }}様 限定"}]
    )
    run(stack)
    assert got(stack, "友0様 限定") == {users[0].user_id: 1}
    assert got(stack, "友1様 限定") == {users[1].user_id: 1}
    assert status(stack, broadcast_id)["accepted"] == 2


def test_dry_run_does_everything_but_send(stack: Stack) -> None:
    friends(stack, 3)
    broadcast_id = create(stack, segment={"followed_within": "1d"}, dry_run=True)
    run(stack)
    result = status(stack, broadcast_id)
    assert (result["status"], result["planned"], result["accepted"]) == ("done", 3, 0)
    assert result["dry_run"] is True and result["dry_run_rows"] == 3
    assert got(stack, "冬のキャンペーンのお知らせ") == {}


def test_scheduled_broadcast_fires_once_at_its_time(stack: Stack) -> None:
    users = friends(stack, 2)
    later = (stack.clock.now() + timedelta(hours=2)).isoformat()
    broadcast_id = create(stack, segment={"followed_within": "1d"}, send_at=later)
    assert run(stack) == 0
    stack.clock.set(stack.clock.now() + timedelta(hours=2))
    assert run(stack) == 1
    assert run(stack) == 0
    assert got(stack, "冬のキャンペーンのお知らせ") == {u.user_id: 1 for u in users}
    assert status(stack, broadcast_id)["status"] == "done"


def test_cancel_before_and_during_sending(stack: Stack) -> None:
    users = friends(stack, 5)
    later = (stack.clock.now() + timedelta(hours=1)).isoformat()
    scheduled = create(stack, segment={"followed_within": "1d"}, send_at=later)
    response = stack.api("POST", f"/broadcasts/{scheduled}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert stack.api("POST", f"/broadcasts/{scheduled}/cancel").status_code == 409

    running = create(stack, segment={"followed_within": "1d"})
    held: list[OutboxMessage] = []
    runner = Runner(stack.runtime, lambda rows: held.extend(rows) or [])
    runner.batch = 2
    assert runner.claim(running)
    runner._queue_batch(running)  # two friends queued and claimed, not yet sent
    assert stack.api("POST", f"/broadcasts/{running}/cancel").json()["status"] == "cancelled"
    runner.run(running)  # stops: the broadcast is no longer sending
    stack.clock.set(stack.clock.now() + timedelta(minutes=5))  # leases run out
    DeliveryWorker(stack.db, stack.runtime.sender).drain()
    result = status(stack, running)
    assert result["status"] == "cancelled"
    assert result["planned"] == 5 and result["queued"] == 2
    # The two already handed to a sender go out (once); the three after the cancel never do.
    delivered = got(stack, "冬のキャンペーンのお知らせ")
    assert delivered == {users[0].user_id: 1, users[1].user_id: 1}  # recipients in id order
    assert result["accepted"] == 2


def test_a_broadcast_dropped_half_way_resumes_without_duplicates(stack: Stack) -> None:
    users = friends(stack, 7)
    broadcast_id = create(stack, segment={"followed_within": "1d"})
    lost: list[OutboxMessage] = []
    crashed = Runner(stack.runtime, lambda rows: lost.extend(rows) or [])
    crashed.batch = 3
    assert crashed.claim(broadcast_id)
    crashed._queue_batch(broadcast_id)  # committed, then the process "died" before sending
    assert lost and status(stack, broadcast_id)["queued"] == 3
    assert run(stack) == 0  # its lease still holds: nobody else takes it yet
    stack.clock.set(stack.clock.now() + timedelta(minutes=2))  # the leases run out
    assert run(stack) == 1  # taken over: the batches not yet written are still there
    DeliveryWorker(stack.db, stack.runtime.sender).drain()  # the orphaned rows are re-sent
    run(stack)
    assert got(stack, "冬のキャンペーンのお知らせ") == {u.user_id: 1 for u in users}
    result = status(stack, broadcast_id)
    assert (result["status"], result["planned"], result["accepted"]) == ("done", 7, 7)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": [{"text": "x"}]}, "'segment'"),
        ({"segment": {"tagg": "x"}, "messages": [{"text": "x"}]}, "condition"),
        ({"segment": {"tag": "VIP会員"}, "messages": []}, "'messages'"),
        ({"segment": {"tag": "VIP会員"}, "messages": [{"text": "x"}] * 6}, "at most 5"),
        ({"segment": {"tag": "VIP会員"}, "messages": [{"txt": "x"}]}, "message"),
        ({"segment": {"tag": "VIP会員"}, "messages": [{"text": "x"}], "send_at": "soon"}, "ISO"),
        ({"segment": {"tag": "VIP会員"}, "messages": [{"text": "x"}], "extra": 1}, "unknown"),
        ({"segment": {"tag": "VIP会員"}, "messages": [{"text": "あ" * 5001}]}, "LINE's limits"),
        (
            {
                "segment": {"tag": "VIP会員"},
                "messages": [{"flex": {"alt_text": "a", "contents": {"type": "bubbl"}}}],
            },
            "not a message LINE accepts",
        ),
    ],
)
def test_bad_broadcasts_are_refused_and_nothing_is_stored(
    stack: Stack, body: dict[str, Any], expected: str
) -> None:
    response = stack.api("POST", "/broadcasts", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.text
    assert stack.api("GET", "/broadcasts").json()["broadcasts"] == []


def test_segment_count_and_preview_with_cost_and_warnings(stack: Stack) -> None:
    users = friends(stack, 4)
    tag(stack, users[0], "VIP会員")
    counted = stack.api("POST", "/segments/count", json={"segment": {"tag": "VIP会員"}}).json()
    assert counted["count"] == 1 and counted["sample"] == []
    assert counted["cost"]["messages"] == 1 and counted["cost"]["plan"] == "free"
    everyone = stack.api(
        "POST", "/segments/preview", json={"segment": {"followed_within": "1d"}, "sample": 2}
    ).json()
    assert everyone["count"] == 4 and len(everyone["sample"]) == 2
    assert any("100%" in w for w in everyone["warnings"])
    nobody = stack.api("POST", "/segments/count", json={"segment": {"tag": "休眠"}}).json()
    assert nobody["count"] == 0 and any("0 recipients" in w for w in nobody["warnings"])
    bad = stack.api("POST", "/segments/count", json={"segment": {"field": "age"}})
    assert bad.status_code == 422


def test_audience_import_with_bad_lines_imports_nothing(stack: Stack) -> None:
    users = friends(stack, 3)
    bad = "user_id\n" + users[0].user_id + "\nnot-an-id\n\n" + users[1].user_id + "\nU123\n"
    response = stack.api(
        "POST", "/audiences?name=来店者", data=bad.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    assert (
        len(details) == 2 and details[0].startswith("line 3:") and details[1].startswith("line 6:")
    )
    assert stack.api("GET", "/audiences").json()["audiences"] == []

    good = "\n".join([users[0].user_id, users[1].user_id, users[1].user_id])
    response = stack.api(
        "POST", "/audiences?name=来店者", data=good.encode(), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"name": "来店者", "size": 2, "duplicates": 1, "replaced": False}
    counted = stack.api("POST", "/segments/count", json={"segment": {"audience": "来店者"}})
    assert counted.json()["count"] == 2


def test_a_yaml_broadcast_with_send_at_fires_once(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "campaigns.yaml").write_text(
        EXTRA
        + "---\nsegment: 常連\ncondition: {tag: VIP会員}\n"
        + "---\nbroadcast: winter\nsegment: 常連\n"
        + 'send_at: "2026-11-23 12:00"\nmessages: [{text: 冬の常連様限定}]\n',
        encoding="utf-8",
    )
    stack = make_stack(flows)
    users = friends(stack, 3)
    tag(stack, users[1], "VIP会員")
    assert run(stack) == 0  # 10:00 Tokyo: not yet
    second = Runner(stack.runtime, sync_send(stack))
    assert second.schedule_catalogue() == 0  # the row exists once, whoever looks
    stack.clock.set(stack.clock.now() + timedelta(hours=2))
    assert run(stack) == 1
    assert run(stack) == 0
    assert got(stack, "冬の常連様限定") == {users[1].user_id: 1}
    [row] = stack.api("GET", "/broadcasts").json()["broadcasts"]
    assert (row["name"], row["status"], row["accepted"]) == ("winter", "done", 1)
