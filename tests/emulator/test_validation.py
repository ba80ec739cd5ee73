"""The OpenAPI → JSON Schema conversion and LINE's extra limits, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulator.validation import (
    ErrorDetail,
    SpecSchemas,
    load_spec,
    message_limits,
    property_path,
    utf16_len,
    validate_request,
)

TINY_SPEC: dict[str, Any] = {
    "components": {
        "schemas": {
            "Pet": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"type": "string"},
                    "name": {"type": "string", "nullable": True},
                },
                "discriminator": {
                    "propertyName": "kind",
                    "mapping": {"cat": "#/components/schemas/Cat"},
                },
            },
            "Cat": {
                "type": "object",
                "allOf": [
                    {"$ref": "#/components/schemas/Pet"},
                    {
                        "type": "object",
                        "required": ["lives"],
                        "properties": {"lives": {"type": "integer", "maximum": 9}},
                    },
                ],
            },
        }
    }
}


def test_discriminator_dispatches_to_the_mapped_subtype() -> None:
    spec = SpecSchemas(TINY_SPEC)
    assert spec.errors("Pet", {"kind": "cat", "lives": 9, "name": None}) == []
    assert spec.errors("Pet", {"kind": "cat"}) == [ErrorDetail("must be specified", "lives")]
    assert spec.errors("Pet", {"kind": "cat", "lives": 10}) == [
        ErrorDetail("Value must be at most 9", "lives")
    ]
    assert [d.property for d in spec.errors("Pet", {"kind": "dog"})] == ["kind"]
    assert spec.errors("Pet", {}) == [ErrorDetail("must be specified", "kind")]
    # the subtype itself still validates its parent's properties, without looping back
    assert spec.errors("Cat", {"kind": "cat", "lives": 1, "name": 5}) == [
        ErrorDetail("must be of type ['string', 'null']", "name")
    ]


def test_vendored_specs_load() -> None:
    messaging = load_spec("messaging-api.yml")
    assert {"PushMessageRequest", "Message__base", "TextMessage"} <= set(messaging.names)
    assert "CallbackRequest" in load_spec("webhook.yml").names


def test_utf16_and_paths() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("あ") == 1
    assert utf16_len("😀") == 2
    assert utf16_len("👨‍👩‍👧") == 8  # three surrogate pairs and two joiners
    assert (
        property_path(["messages", 0, "quickReply", "items", 12])
        == "messages[0].quickReply.items[12]"
    )
    assert property_path(["to"]) == "to"


def test_template_limits() -> None:
    too_many = {
        "type": "template",
        "altText": "a",
        "template": {
            "type": "buttons",
            "text": "t",
            "actions": [{"type": "message", "label": str(i), "text": "x"} for i in range(5)],
        },
    }
    assert message_limits(too_many, ["messages", 0]) == [
        ErrorDetail("Size must be between 1 and 4", "messages[0].template.actions")
    ]
    confirm = {
        "type": "template",
        "altText": "a",
        "template": {
            "type": "confirm",
            "text": "t",
            "actions": [{"type": "message", "label": "a", "text": "a"}],
        },
    }
    assert message_limits(confirm, ["messages", 0]) == [
        ErrorDetail("Size must be between 2 and 2", "messages[0].template.actions")
    ]
    long_alt = {"type": "flex", "altText": "x" * 1501, "contents": {"type": "bubble"}}
    assert message_limits(long_alt, ["messages", 0]) == [
        ErrorDetail("Length must be between 0 and 1500", "messages[0].altText")
    ]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text", "text": "こんにちは"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        {
            "type": "image",
            "originalContentUrl": "https://x/a.jpg",
            "previewImageUrl": "https://x/p.jpg",
        },
        {
            "type": "template",
            "altText": "a",
            "template": {
                "type": "buttons",
                "text": "t",
                "actions": [
                    {"type": "datetimepicker", "label": "日時", "data": "d", "mode": "datetime"}
                ],
            },
        },
        {
            "type": "flex",
            "altText": "a",
            "contents": {
                "type": "carousel",
                "contents": [
                    {
                        "type": "bubble",
                        "body": {"type": "box", "layout": "vertical", "contents": []},
                    }
                ],
            },
        },
    ],
)
def test_valid_messages_pass(message: dict[str, Any]) -> None:
    assert (
        validate_request("PushMessageRequest", {"to": "U" + "0" * 32, "messages": [message]}) == []
    )
