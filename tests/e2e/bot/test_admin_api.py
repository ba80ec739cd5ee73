"""The admin API: bearer auth, friends read/list/change, and triggers fired by changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import Stack


def test_token_required(stack: Stack) -> None:
    assert stack.api("GET", "/friends", token=None).status_code == 401
    response = stack.api("GET", "/friends", token="wrong")
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong bearer token"}


def test_api_off_without_token_setting(make_stack: StackFactory) -> None:
    stack = make_stack(admin_token=None)
    response = stack.api("GET", "/friends")
    assert response.status_code == 404
    assert "STEPLINE_ADMIN_TOKEN" in response.json()["error"]


def test_unknown_friend_is_404_json(stack: Stack) -> None:
    response = stack.api("GET", "/friends/Unobody")
    assert response.status_code == 404
    assert "Unobody" in response.json()["error"]
    assert stack.api("PATCH", "/friends/Unobody", json={"add_tags": ["VIP"]}).status_code == 404


def test_friend_shape_mid_flow(stack: Stack) -> None:
    user = stack.user("花子")
    user.follow()
    body = stack.friend(user)
    assert body == {
        "line_user_id": user.user_id,
        "display_name": "花子",
        "status": "following",
        "followed_at": body["followed_at"],
        "route": None,
        "rich_menu": None,
        "tags": [],
        "fields": {"points": 0},
        "conversation": {"flow": "welcome", "state": "gender"},
        "fields_shown": [{"field": "points", "label": "points", "value": "0"}],  # no label here
        "sequences": [],
    }


def test_fields_are_shown_with_the_owners_labels_and_steps_with_their_time(
    stack: Stack,
) -> None:
    """What the simulator's panel shows: 性別 = 女性 (the choice that set `gender: female`),
    and each waiting sequence step with its time in the account's time zone."""
    user = stack.user("花子")
    user.follow()
    user.tap("女性")
    user.say("42")
    body = stack.friend(user)
    shown = {item["field"]: (item["label"], item["value"]) for item in body["fields_shown"]}
    assert body["fields"]["gender"] == "female"
    assert shown["gender"][1] == "女性"
    assert shown["age"][1] == "42"


def test_route_is_set_through_the_api_and_validated(stack: Stack) -> None:
    user = stack.user("花子")
    user.follow()
    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"route": "instagram"})
    assert response.status_code == 200, response.text
    assert stack.friend(user)["route"] == "instagram"
    bad = stack.api("PATCH", f"/friends/{user.user_id}", json={"route": "x" * 101})
    assert bad.status_code == 422 and "route" in bad.text
    assert stack.friend(user)["route"] == "instagram"
    counted = stack.api("POST", "/segments/count", json={"segment": {"route": "instagram"}})
    assert counted.json()["count"] == 1


def test_list_paged_and_filtered_by_tag(stack: Stack) -> None:
    users = [stack.user(f"user{i}") for i in range(5)]
    for user in users:
        user.follow()
    for user in users[:3]:
        user.say("女性")
    page = stack.api("GET", "/friends", params={"limit": 2}).json()
    assert page["total"] == 5 and len(page["friends"]) == 2
    second = stack.api("GET", "/friends", params={"limit": 2, "after": page["next_after"]}).json()
    third = stack.api("GET", "/friends", params={"limit": 2, "after": second["next_after"]}).json()
    ids = [f["line_user_id"] for p in (page, second, third) for f in p["friends"]]
    assert ids == [u.user_id for u in users]
    assert third["next_after"] is None
    tagged = stack.api("GET", "/friends", params={"tag": "女性"}).json()
    assert tagged["total"] == 3
    assert {f["line_user_id"] for f in tagged["friends"]} == {u.user_id for u in users[:3]}
    assert stack.api("GET", "/friends", params={"limit": "x"}).status_code == 422
    assert stack.api("GET", "/friends", params={"limit": 0}).status_code == 422


def test_patch_changes_tags_and_fields(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    response = stack.api(
        "PATCH",
        f"/friends/{user.user_id}",
        json={"add_tags": ["購入済み", "腰痛"], "fields": {"age": "41", "email": "a@example.com"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["腰痛", "購入済み"]
    assert response.json()["fields"] == {"age": 41, "email": "a@example.com", "points": 0}
    response = stack.api(
        "PATCH", f"/friends/{user.user_id}", json={"remove_tags": ["腰痛"], "fields": {"age": None}}
    )
    assert response.json()["tags"] == ["購入済み"]
    assert "age" not in response.json()["fields"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"add_tags": ["VIP", "存在しない"]}, "unknown tag '存在しない'"),
        ({"fields": {"age": 300}}, "fields.age: must be at most 120"),
        ({"fields": {"gender": "robot"}}, "fields.gender: must be one of female, male, other"),
        ({"fields": {"nope": 1}}, "unknown field 'nope'"),
        ({"add_tags": "VIP"}, "`add_tags` must be a list"),
        ({"colour": "red"}, "unknown key(s): colour"),
    ],
)
def test_bad_patch_is_422_and_changes_nothing(stack: Stack, body: dict, fragment: str) -> None:
    user = stack.user()
    user.follow()
    before = stack.friend(user)
    response = stack.api("PATCH", f"/friends/{user.user_id}", json=body)
    assert response.status_code == 422
    text = response.json()["error"] + " " + " ".join(response.json().get("details", []))
    assert fragment in text
    assert stack.friend(user) == before


def test_patch_not_json_is_422(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    response = stack.api("PATCH", f"/friends/{user.user_id}", data="tags=1")
    assert response.status_code == 422


def test_tag_added_by_api_starts_flow_by_push(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    # Mid-questionnaire, a tag change does not cut in with another flow.
    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["VIP"]})
    assert response.json()["conversation"] == {"flow": "welcome", "state": "gender"}
    stack.api("PATCH", f"/friends/{user.user_id}", json={"remove_tags": ["VIP"]})
    user.tap("男性")
    user.say("35")  # completes the questionnaire
    user.received()
    response = stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["VIP"]})
    assert response.json()["conversation"] == {"flow": "vip_welcome", "state": "course"}
    received = user.received()
    assert [d["message"]["text"] for d in received] == ["VIP会員のご希望コースは?"]
    assert received[0]["via"] == "push"  # no reply token outside a webhook: a (paid) push
    user.tap("フェイシャル")
    assert user.texts() == ["100ポイントを進呈しました"]
    assert stack.friend(user)["fields"]["points"] == 100


def test_reload_keeps_last_good_catalogue(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    stack = make_stack(flows)
    (flows / "broken.yaml").write_text("flow: x\nsteps: [{ask: a}]\n", encoding="utf-8")
    response = stack.api("POST", "/flows/reload")
    assert response.status_code == 422
    assert any(
        p.startswith(str(flows / "broken.yaml")) or "broken.yaml" in p
        for p in response.json()["problems"]
    )
    user = stack.user()
    user.follow()  # the old catalogue still runs
    assert user.texts() == ["花子さん、性別を教えてください"]
    health = __import__("requests").get(f"{stack.bot.url}/healthz", timeout=10).json()
    assert health["catalogue_problems"]
    (flows / "broken.yaml").unlink()
    assert stack.api("POST", "/flows/reload").json()["ok"] is True
