"""The events API: outside systems report events; `event:` documents and flows react, once."""

from __future__ import annotations

import re
import threading
from typing import Any

import requests
from sqlalchemy import select

from storage.models import OutboxMessage, OutsideEvent
from tests.support import LineUser, Stack


def post(stack: Stack, body: dict[str, Any], token: str | None = "default") -> requests.Response:
    if token == "default":
        return stack.api("POST", "/events", json=body)
    return stack.api("POST", "/events", token=token, json=body)


def idle_friend(stack: Stack, name: str = "花子") -> LineUser:
    """A friend with no questionnaire running (the welcome flow starts only on a new follow)."""
    user = stack.user(name)
    user.follow()
    user.unfollow()
    user.follow()
    user.received()
    assert stack.friend(user)["conversation"] is None
    return user


def outside_events(stack: Stack) -> list[OutsideEvent]:
    with stack.db.read() as session:
        return list(session.scalars(select(OutsideEvent).order_by(OutsideEvent.id)))


def test_purchase_completed_tags_and_adds_points(stack: Stack) -> None:
    user = idle_friend(stack)
    response = post(
        stack,
        {
            "user_id": user.user_id,
            "name": "purchase_completed",
            "properties": {"points": 120, "order": "A-1"},
            "id": "order-A-1",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "order-A-1"
    assert body["status"] == "done"
    assert body["friend"] == stack.friend(user)
    assert "購入済み" in body["friend"]["tags"]
    assert body["friend"]["fields"]["points"] == 120
    [row] = outside_events(stack)
    assert (row.event_id, row.name, row.status) == ("order-A-1", "purchase_completed", "done")
    assert row.properties == {"points": 120, "order": "A-1"}


def test_price_drop_is_pushed_with_the_event_values(stack: Stack) -> None:
    user = idle_friend(stack)
    response = post(
        stack,
        {
            "user_id": user.user_id,
            "name": "price_drop",
            "properties": {"product": "アロマオイル", "price": 1980},
            "id": "drop-1",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    [delivery] = user.received()
    assert delivery["via"] == "push"
    # The link is tracked: the bot's own /r/<token>, which redirects to the catalogue's URL.
    assert re.fullmatch(
        r"お気に入りのアロマオイルが1980円になりました → http://127\.0\.0\.1:8000/r/[A-Za-z0-9_-]+",
        delivery["message"]["text"],
    )


def test_price_drop_is_skipped_when_its_condition_fails(stack: Stack) -> None:
    user = idle_friend(stack)
    post(stack, {"user_id": user.user_id, "name": "purchase_completed", "id": "p1"})
    response = post(
        stack,
        {
            "user_id": user.user_id,
            "name": "price_drop",
            "properties": {"product": "アロマオイル", "price": 1980},
            "id": "drop-2",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "skipped"
    assert user.received() == []
    assert [(e.event_id, e.status) for e in outside_events(stack)] == [
        ("p1", "done"),
        ("drop-2", "skipped"),
    ]


def test_the_same_id_twice_has_one_effect(stack: Stack) -> None:
    user = idle_friend(stack)
    body = {
        "user_id": user.user_id,
        "name": "purchase_completed",
        "properties": {"points": 50},
        "id": "order-7",
    }
    first = post(stack, body)
    second = post(stack, body)
    assert first.json()["status"] == "done"
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["id"] == "order-7"
    assert stack.friend(user)["fields"]["points"] == 50
    assert len(outside_events(stack)) == 1


def test_a_duplicate_message_event_is_not_pushed_twice(stack: Stack) -> None:
    user = idle_friend(stack)
    body = {
        "user_id": user.user_id,
        "name": "price_drop",
        "properties": {"product": "ハンドクリーム", "price": 900},
        "id": "drop-3",
    }
    assert post(stack, body).json()["status"] == "done"
    assert post(stack, body).json()["status"] == "duplicate"
    assert len(user.received()) == 1
    with stack.db.read() as session:
        causes = session.scalars(select(OutboxMessage.cause)).all()
    assert causes.count("event:drop-3") == 1


def test_concurrent_requests_with_one_id_have_one_effect(stack: Stack) -> None:
    users = [idle_friend(stack, "一郎"), idle_friend(stack, "二郎")]
    statuses: list[str] = []
    errors: list[BaseException] = []

    def send(user: LineUser) -> None:
        try:
            response = post(
                stack,
                {
                    "user_id": user.user_id,
                    "name": "purchase_completed",
                    "properties": {"points": 10},
                    "id": "same-id",
                },
            )
            assert response.status_code == 200, response.text
            statuses.append(response.json()["status"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=send, args=(u,)) for u in users * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert sorted(statuses) == ["done"] + ["duplicate"] * 11
    points = [stack.friend(u)["fields"]["points"] for u in users]
    assert sorted(points) == [0, 10]
    assert len(outside_events(stack)) == 1


def test_token_required(stack: Stack) -> None:
    body = {"user_id": "U1", "name": "price_drop", "id": "x"}
    assert post(stack, body, token=None).status_code == 401
    assert post(stack, body, token="wrong").status_code == 401


def test_unknown_friend_is_404(stack: Stack) -> None:
    response = post(stack, {"user_id": "Unobody", "name": "price_drop", "id": "x"})
    assert response.status_code == 404
    assert "Unobody" in response.json()["error"]
    assert outside_events(stack) == []


def test_bad_payloads_list_every_problem_and_change_nothing(stack: Stack) -> None:
    user = idle_friend(stack)
    response = post(stack, {"name": 5, "properties": [1], "extra": True})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid event; nothing was done"
    details = body["details"]
    assert len(details) == 5
    assert any("unknown key(s): extra" in d for d in details)
    assert any("`id` is required" in d for d in details)
    assert any("`name` is required" in d for d in details)
    assert any("`user_id` (the LINE user id) or `member_id` is required" in d for d in details)
    assert any("`properties` must be an object" in d for d in details)

    both = post(stack, {"user_id": user.user_id, "member_id": "M1", "name": "price_drop", "id": ""})
    assert both.status_code == 422
    assert len(both.json()["details"]) == 2
    assert any("not both" in d for d in both.json()["details"])

    long_id = post(stack, {"user_id": user.user_id, "name": "price_drop", "id": "x" * 101})
    assert long_id.status_code == 422
    assert "at most 100" in long_id.json()["details"][0]

    typo = post(stack, {"user_id": user.user_id, "name": "price_dorp", "id": "t1"})
    assert typo.status_code == 422
    assert typo.json()["details"] == [
        "unknown event name 'price_dorp' (did you mean 'price_drop'?): no event document, and"
        " no flow or sequence starts (or stops) on it"
    ]
    not_json = stack.api("POST", "/events", data="nope", headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 422
    assert outside_events(stack) == []
    assert stack.friend(user)["tags"] == []


def test_member_id_finds_the_friend_by_field(stack: Stack) -> None:
    user = idle_friend(stack)
    other = idle_friend(stack, "太郎")
    patched = stack.api("PATCH", f"/friends/{user.user_id}", json={"fields": {"member_id": "M-42"}})
    assert patched.status_code == 200, patched.text
    stack.api("PATCH", f"/friends/{other.user_id}", json={"fields": {"member_id": "M-43"}})
    response = post(
        stack,
        {
            "member_id": "M-42",
            "name": "purchase_completed",
            "properties": {"points": 5},
            "id": "m1",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["friend"]["line_user_id"] == user.user_id
    assert stack.friend(user)["fields"]["points"] == 5
    assert stack.friend(other)["fields"]["points"] == 0
    missing = post(stack, {"member_id": "M-99", "name": "price_drop", "id": "m2"})
    assert missing.status_code == 404
    assert "M-99" in missing.json()["error"]


def test_member_id_needs_the_field_in_the_catalogue(make_stack: Any, tmp_path: Any) -> None:
    from tests.e2e.bot.conftest import TEST_FLOWS

    flows = tmp_path / "flows"
    flows.mkdir()
    text = (TEST_FLOWS / "salon.yaml").read_text(encoding="utf-8")
    flows.joinpath("salon.yaml").write_text(
        text.replace("  member_id: {type: text}\n", "  loyalty_id: {type: text}\n"),
        encoding="utf-8",
    )
    stack = make_stack(flows)
    response = post(stack, {"member_id": "M-1", "name": "price_drop", "id": "m3"})
    assert response.status_code == 422
    assert "needs a text field named member_id" in response.json()["details"][0]


def test_an_event_starts_a_flow_with_its_values(stack: Stack) -> None:
    user = idle_friend(stack)
    response = post(
        stack,
        {
            "user_id": user.user_id,
            "name": "reservation_made",
            "properties": {"menu": "アロマ60分"},
            "id": "r1",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    assert response.json()["friend"]["conversation"] == {
        "flow": "reservation_followup",
        "state": "request",
    }
    [delivery] = user.received()
    assert delivery["via"] == "push"
    assert delivery["message"]["text"].startswith("アロマ60分のご予約ありがとうございます")
    user.say("窓側の席で")
    assert user.texts() == ["承りました"]


def test_an_event_does_not_cut_into_a_running_questionnaire(stack: Stack) -> None:
    user = stack.user()
    user.follow()  # the welcome questionnaire starts
    user.received()
    response = post(
        stack,
        {"user_id": user.user_id, "name": "reservation_made", "properties": {}, "id": "r2"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["friend"]["conversation"]["flow"] == "welcome"
    assert user.received() == []
