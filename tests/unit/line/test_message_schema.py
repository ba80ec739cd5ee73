"""LINE's schema of a message object: the committed file is the spec's, and it says why a
message is refused, naming the property."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from bot.line.message_schema import SCHEMA_FILE, message_problems

ROOT = Path(__file__).resolve().parents[3]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "line_message_schema", ROOT / "tools" / "line_message_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_schema_is_cut_from_the_vendored_spec() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == _tool().schema_text(), (
        "bot/line/message.schema.json is out of date: run tools/line_message_schema.py"
    )


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text", "text": "ご予約ありがとうございます"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        {
            "type": "text",
            "text": "性別を教えてください",
            "quickReply": {
                "items": [
                    {
                        "type": "action",
                        "action": {"type": "postback", "label": "女性", "data": "sl1|a|b|0"},
                    }
                ]
            },
        },
        {
            "type": "flex",
            "altText": "お知らせ",
            "contents": {
                "type": "bubble",
                "body": {
                    "type": "box",
                    "layout": "vertical",
                    "contents": [{"type": "text", "text": "冬のキャンペーン"}],
                },
            },
        },
    ],
)
def test_messages_line_accepts_have_no_problems(message: dict[str, object]) -> None:
    assert message_problems(message) == []


@pytest.mark.parametrize(
    ("message", "problems"),
    [
        (
            {"type": "flex", "altText": "a", "contents": {"type": "bubbl"}},
            ["'contents.type' must be one of bubble, carousel"],
        ),
        (
            {
                "type": "flex",
                "altText": "a",
                "contents": {"type": "bubble", "body": {"type": "box"}},
            },
            ["'contents.body.layout' is required", "'contents.body.contents' is required"],
        ),
        ({"type": "flex", "altText": "a"}, ["'contents' is required"]),
        ({"type": "text", "text": 5}, ["'text' must be string"]),
        ({"text": "hi"}, ["'type' is required"]),
    ],
)
def test_a_refused_message_says_which_property_and_why(
    message: dict[str, object], problems: list[str]
) -> None:
    assert message_problems(message) == problems


def test_an_unknown_message_type_lists_lines_types() -> None:
    (problem,) = message_problems({"type": "txt", "text": "hi"})
    assert problem.startswith("'type' must be one of text, ")
    assert "flex" in problem and "sticker" in problem
