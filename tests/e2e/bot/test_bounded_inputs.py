"""Bounded inputs at the admin API, over real HTTP: what answered 500 is a 422 (or a 404 for an
id no broadcast can have) naming the problem; what was accepted and failed later (at send
time, or by reaching nobody) is refused at creation with nothing stored, or warned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import Stack

EXTRA = "tags: [VIP会員, 休眠]\n"
VIP = {"tag": "VIP会員"}
HELLO = [{"text": "冬のご案内"}]


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Stack:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    (flows / "extra.yaml").write_text(EXTRA, encoding="utf-8")
    return make_stack(flows)


def raw(stack: Stack, method: str, path: str, body: str | bytes) -> requests.Response:
    """A body sent as written (Python's `json` would refuse to write some of these)."""
    return stack.api(method, path, data=body, headers={"Content-Type": "application/json"})


def nothing_stored(stack: Stack) -> None:
    assert stack.api("GET", "/broadcasts").json()["broadcasts"] == []


def nested_not(levels: int) -> dict[str, Any]:
    condition: dict[str, Any] = VIP
    for _ in range(levels):
        condition = {"not": condition}
    return condition


# ------------------------------------------------------------------ what answered 500


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        (
            {"followed_within": "99999999999999d"},
            "the duration '99999999999999d' is too long: at most 36500d (100 years)",
        ),
        ({"clicked": "coupon", "within": "999999999d"}, "is too long: at most 36500d"),
        (nested_not(50), "the segment nests all/any/not more than 10 levels deep (at segment.not"),
        (
            {"any": [VIP] * 3000},
            "the segment holds more than 100 conditions (named segments counted with theirs)",
        ),
        (
            {"field": "email", "in": [f"2026-01-{i % 28 + 1:02d}" for i in range(500)]},
            "the segment's `in` lists hold more than 200 values in all",
        ),
        ({"field": "age", "eq": 10**400}, "segment.eq: the number is too large (401 digits)"),
    ],
)
def test_segments_beyond_the_bounds_are_422_naming_the_problem(
    stack: Stack, segment: dict[str, Any], message: str
) -> None:
    for path in ("/segments/count", "/segments/preview"):
        response = stack.api("POST", path, json={"segment": segment})
        assert response.status_code == 422, response.text
        assert message in response.json()["error"]
    response = stack.api("POST", "/broadcasts", json={"segment": segment, "messages": HELLO})
    assert response.status_code == 422 and message in response.json()["error"]
    nothing_stored(stack)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_broadcast_id_no_broadcast_can_have_is_404(stack: Stack, method: str) -> None:
    for broadcast_id in ("99999999999999999999999", "9223372036854775808", "0"):
        path = f"/broadcasts/{broadcast_id}" + ("/cancel" if method == "POST" else "")
        response = stack.api(method, path)
        assert response.status_code == 404, response.text
        assert response.json() == {"error": f"no broadcast {int(broadcast_id)}"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"segment": ' + "[" * 100_000 + "]" * 100_000 + "}", "the body nests deeper than 64"),
        ('{"segment": ' + '{"not": ' * 70 + "{}" + "}" * 71, "the body nests deeper than 64"),
        ('{"segment": {"tag": "VIP会員"', "the body is not valid JSON"),
        ('{"segment": {"field": "age", "gt": NaN}}', "NaN is not a JSON number"),
        ('{"segment": {"field": "age", "lte": -Infinity}}', "-Infinity is not a JSON number"),
        ('{"segment": {"field": "age", "gte": 1e400}}', "1e400 is beyond the range of a number"),
        ('[{"tag": "VIP会員"}]', "the body must be a JSON object"),
        (b'{"segment": "\xff"}', "the body is not valid JSON"),
    ],
)
def test_bodies_that_are_not_bounded_json_are_422(
    stack: Stack, body: str | bytes, message: str
) -> None:
    response = raw(stack, "POST", "/segments/count", body)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_a_body_over_1_mb_is_422_but_an_audience_may_be_larger(stack: Stack) -> None:
    padding = "x" * (1024 * 1024)
    response = stack.api("POST", "/segments/count", json={"segment": VIP, "pad": padding})
    assert response.status_code == 422
    assert response.json()["error"] == "the body is 1.0 MB; a JSON body may be at most 1.0 MB"
    ids = [f"U{i:032x}" for i in range(40_000)]  # 1.4 MB of JSON
    response = stack.api("POST", "/audiences", json={"name": "大口", "user_ids": ids})
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 40_000


def test_deep_event_properties_are_422_and_nothing_runs(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    base = {"id": "deep-1", "name": "purchase_completed", "user_id": user.user_id}
    deep = json.dumps(base)[:-1] + ', "properties": {"a": ' + "[" * 50_000 + "]" * 50_000 + "}}"
    response = raw(stack, "POST", "/events", deep)
    assert response.status_code == 422
    assert response.json()["error"] == "the body nests deeper than 64 levels"
    rather_deep: Any = 1
    for _ in range(20):
        rather_deep = {"more": rather_deep}
    response = stack.api("POST", "/events", json={**base, "properties": {"order": rather_deep}})
    assert response.status_code == 422
    assert response.json()["details"] == [
        "`properties` nest more than 16 levels deep "
        "(at properties.order.more.more.more.more.more.more… (17 levels))"
    ]
    big = {"note": "x" * (65 * 1024)}
    response = stack.api("POST", "/events", json={**base, "properties": big})
    assert response.json()["details"] == ["`properties` are 65 KB as JSON; at most 64 KB"]
    assert "購入済み" not in stack.friend(user)["tags"]


def test_a_number_beyond_an_integer_field_is_422_and_changes_nothing(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    before = stack.friend(user)
    for value in (1e308, 2**53, -(2**53)):
        response = stack.api(
            "PATCH", f"/friends/{user.user_id}", json={"fields": {"points": value}}
        )
        assert response.status_code == 422, response.text
        assert response.json()["details"] == [
            "fields.points: must be between -9007199254740991 and 9007199254740991"
        ]
    response = raw(stack, "PATCH", f"/friends/{user.user_id}", '{"fields": {"points": Infinity}}')
    assert response.status_code == 422
    assert stack.friend(user) == before
    response = stack.api(
        "PATCH", f"/friends/{user.user_id}", json={"fields": {"points": 2**53 - 1}}
    )
    assert response.json()["fields"]["points"] == 2**53 - 1


# ------------------------------------------------------------------ what was accepted


BUTTON = [{"label": "詳しく", "text": "詳しく"}]
BUBBLE = {
    "type": "bubble",
    "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "冬"}]},
}


@pytest.mark.parametrize(
    ("messages", "error", "detail"),
    [
        ([{"text": "a" * 5001}], "messages.0 exceeds LINE's limits", "text is 5001 UTF-16 units"),
        (
            [{"text": "ok"}, {"text": "😀" * 2500 + "a"}],
            "messages.1 exceeds LINE's limits",
            "text is 5001 UTF-16 units; LINE allows 5000",
        ),
        (
            [{"buttons": {"text": "a" * 161, "actions": BUTTON}}],
            "messages.0 exceeds LINE's limits",
            "buttons text is 161 UTF-16 units; LINE allows 160",
        ),
        (
            [{"buttons": {"title": "冬", "text": "a" * 61, "actions": BUTTON}}],
            "messages.0 exceeds LINE's limits",
            "buttons text (with a title or image) is 61 UTF-16 units; LINE allows 60",
        ),
        (
            [{"confirm": {"text": "a" * 241, "actions": BUTTON * 2}}],
            "messages.0 exceeds LINE's limits",
            "confirm text is 241 UTF-16 units; LINE allows 240",
        ),
        (
            [{"carousel": {"columns": [{"text": "a" * 121, "actions": BUTTON}]}}],
            "messages.0 exceeds LINE's limits",
            "carousel column 1 text is 121 UTF-16 units; LINE allows 120",
        ),
        (
            [
                {
                    "image": {
                        "url": "http://example.com/a.png",
                        "preview": "https://example.com/p.png",
                    }
                }
            ],
            "messages.0 exceeds LINE's limits",
            "originalContentUrl 'http://example.com/a.png' is not an https:// URL",
        ),
        (
            [{"text": "x", "quick_replies": [{"label": "a", "text": "a" * 301}]}],
            "messages.0 exceeds LINE's limits",
            "the text of action 'a' is 301 UTF-16 units; LINE allows 300",
        ),
        (
            [{"flex": {"alt_text": "a" * 1501, "contents": BUBBLE}}],
            "messages.0 exceeds LINE's limits",
            "altText is 1501 UTF-16 units; LINE allows 1500",
        ),
        (
            [{"text": "{{ friend.name さん"}],
            "messages.0 holds a template that does not work",
            "text: template error: expected token 'end of print statement', got 'さん'",
        ),
        (
            [{"text": "{{ friend.name | shout }}さん"}],
            "messages.0 holds a template that does not work",
            "text: template error: unknown filter 'shout'",
        ),
        (
            [{"text": "ok"}, {"text": "{{ link('cuopon') }}"}],
            "messages.1 holds a template that does not work",
            "text: unknown link 'cuopon' (did you mean 'coupon'?)",
        ),
        (
            [{"buttons": {"text": "{% if %}", "actions": BUTTON}}],
            "messages.0 holds a template that does not work",
            "buttons.text: template error",
        ),
    ],
)
def test_messages_line_would_refuse_or_templates_that_fail_are_422(
    stack: Stack, messages: list[Any], error: str, detail: str
) -> None:
    response = stack.api("POST", "/broadcasts", json={"segment": VIP, "messages": messages})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == error
    assert any(d.startswith(detail) for d in response.json()["details"]), response.json()
    nothing_stored(stack)


def test_a_segment_naming_what_does_not_exist_is_refused_listing_it_all(stack: Stack) -> None:
    segment = {
        "all": [
            {"tag": "VIP"},
            {"not": {"tag": "VIP会員s"}},
            {"field": "agee", "gte": 40},
            {"field": "gender", "eq": "robot"},
            {"route": "tiktok"},
        ]
    }
    listed = [
        "unknown tag 'VIP会員s' (did you mean 'VIP会員'?)",
        "unknown field 'agee' (did you mean 'age'?)",
        "field 'gender': expected one of female, male, other, got 'robot'",
        "no friend has route 'tiktok' (routes are set with PATCH /api/v1/friends/<id>)",
    ]
    response = stack.api("POST", "/broadcasts", json={"segment": segment, "messages": HELLO})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "the segment names what does not exist; nothing was stored",
        "details": listed,
    }
    nothing_stored(stack)
    # The count answers the same, as warnings: it is a question, and friends may still hold
    # a tag the catalogue has dropped.
    counted = stack.api("POST", "/segments/count", json={"segment": segment})
    assert counted.status_code == 200, counted.text
    warnings = counted.json()["warnings"]
    assert warnings[:4] == [f"the segment names what does not exist: {n}" for n in listed]
    assert counted.json()["count"] == 0


def test_a_broadcast_reaching_nobody_is_stored_with_a_warning(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    nobody = stack.api("POST", "/broadcasts", json={"segment": {"tag": "休眠"}, "messages": HELLO})
    assert nobody.status_code == 201, nobody.text
    assert nobody.json()["warnings"] == [
        "0 recipients: nobody matches this segment now (the audience is counted again when "
        "sending starts)"
    ]
    someone = stack.api(
        "POST", "/broadcasts", json={"segment": {"followed_within": "1d"}, "messages": HELLO}
    )
    assert someone.status_code == 201 and someone.json()["warnings"] == []
    assert len(stack.api("GET", "/broadcasts").json()["broadcasts"]) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": "n" * 101}, "'name' must be a text of 1–100 characters"),
        ({"name": {"x": 1}}, "'name' must be a text of 1–100 characters"),
        ({"send_at": "0001-01-01T00:00:00+05:00"}, "is out of the range of dates"),
    ],
)
def test_other_broadcast_fields_are_checked_before_anything_is_stored(
    stack: Stack, extra: dict[str, Any], message: str
) -> None:
    response = stack.api("POST", "/broadcasts", json={"segment": VIP, "messages": HELLO, **extra})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    nothing_stored(stack)
