"""Edge cases of the engine: bad numbers, renamed fields, time zones in conditions,
templates that render too long, timeouts noticed on a new start."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from bot.catalogue.models import Condition, FieldCondition, FieldDef
from bot.engine.conditions import field_matches
from bot.engine.fields import InvalidValue, coerce, parse_input
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import Stack

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "ｎａｎ", "1e999"])
def test_number_input_rejects_non_finite(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_input("number", text, TOKYO)


@pytest.mark.parametrize(
    ("definition", "value"),
    [
        (FieldDef(type="integer"), float("nan")),
        (FieldDef(type="integer"), 1e400),
        (FieldDef(type="integer"), [1]),
        (FieldDef(type="number"), {"a": 1}),
        (FieldDef(type="email"), ["x@y.jp"]),
        (FieldDef(type="text"), 12),
        (FieldDef(type="date"), 20261201),
        (FieldDef(type="choice", choices=["a"]), ["a"]),
    ],
)
def test_coerce_refuses_wrong_json_types(definition: FieldDef, value: object) -> None:
    with pytest.raises(InvalidValue):
        coerce(definition, value, TOKYO)


def condition(raw: dict[str, object]) -> FieldCondition:
    parsed = TypeAdapter(Condition).validate_python(raw)
    assert isinstance(parsed, FieldCondition)
    return parsed


def test_datetime_conditions_use_the_account_time_zone() -> None:
    # 08:00 on 1 December in Tokyo is still 30 November in UTC.
    reservation = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert field_matches(condition({"field": "r", "gte": "2026-12-01"}), reservation, TOKYO)
    assert field_matches(condition({"field": "r", "eq": "2026-12-01"}), reservation, TOKYO)
    assert field_matches(condition({"field": "r", "gte": "2026-12-01 07:00"}), reservation, TOKYO)
    assert not field_matches(condition({"field": "r", "lt": "2026-12-01"}), reservation, TOKYO)
    birthday = date(2026, 12, 1)
    assert field_matches(condition({"field": "b", "eq": "2026-12-01"}), birthday, TOKYO)
    assert field_matches(
        condition({"field": "b", "between": ["2026-11-01", "2026-12-31"]}), birthday, TOKYO
    )


def test_api_rejects_nan_and_huge_numbers_with_422(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    for body in ('{"fields": {"age": NaN}}', '{"fields": {"age": 1e400}}'):
        response = stack.api(
            "PATCH",
            f"/friends/{user.user_id}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text


def test_friend_mid_flow_survives_a_removed_field(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    stack = make_stack(flows)
    user = stack.user()
    user.follow()
    user.tap("女性")
    user.received()
    salon = flows / "salon.yaml"
    text = salon.read_text(encoding="utf-8")
    text = text.replace("  age: {type: integer, min: 0, max: 120}\n", "  years: {type: integer}\n")
    text = text.replace("save: age", "save: years").replace("field: age", "field: years")
    salon.write_text(text, encoding="utf-8")
    assert stack.api("POST", "/flows/reload").json()["ok"] is True
    user.say("45")  # the old version saves into `age`, which no longer exists
    assert user.texts() == ["気になることは?"]
    assert "age" not in stack.friend(user)["fields"]


def test_long_name_in_a_label_is_cut_to_lines_limit(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "f.yaml").write_text(
        "tags: [x]\n---\nflow: hello\nstart_on: [{follow: new}]\nsteps:\n"
        "  - ask: q\n    text: こんにちは\n    choices:\n"
        '      - {label: "{{ friend.name }}です"}\n',
        encoding="utf-8",
    )
    stack = make_stack(flows)
    user = stack.user("とても長いお名前のお客様でございます様")
    user.follow()
    assert user.texts() == ["こんにちは"]
    label = user.last_quick_replies()[0]["label"]
    assert len(label) == 20 and label.endswith("…")


def test_expired_conversation_is_abandoned_not_replaced_on_restart(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    stack.clock.advance(timedelta(hours=25))
    user.say("アンケート")  # starts the flow again; the old run timed out first
    assert user.texts() == ["花子さん、性別を教えてください"]
    assert "途中離脱" in stack.friend(user)["tags"]
