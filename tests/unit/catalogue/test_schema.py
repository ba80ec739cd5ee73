"""The committed JSON Schema: up to date with the models, and accepting the example."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from bot.catalogue.schema import SCHEMA_PATH, build_schema, is_up_to_date, schema_text
from bot.catalogue.source import plain
from tests.unit.catalogue.conftest import EXAMPLE


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def as_json(value: Any) -> Any:
    """YAML values as a JSON editor sees them (dates are strings there)."""
    return json.loads(
        json.dumps(
            plain(value),
            default=lambda v: v.isoformat() if isinstance(v, date | datetime) else str(v),
        )
    )


def documents(path: Path) -> list[Any]:
    return [as_json(d) for d in YAML().load_all(path.read_text(encoding="utf-8"))]


def test_committed_schema_is_up_to_date() -> None:
    assert is_up_to_date(), (
        "run `stepline schema --write` and commit bot/catalogue/stepline.schema.json"
    )
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text()


def test_schema_shape() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["anyOf"] == [
        {"$ref": "#/$defs/FlowDoc"},
        {"$ref": "#/$defs/EventDoc"},
        {"$ref": "#/$defs/SequenceDoc"},
        {"$ref": "#/$defs/SegmentDoc"},
        {"$ref": "#/$defs/BroadcastDoc"},
        {"$ref": "#/$defs/RichMenuDoc"},
        {"$ref": "#/$defs/Lists"},
    ]
    assert set(schema["$defs"]["Lists"]["properties"]) == {"fields", "tags", "keywords", "links"}
    step = schema["$defs"]["Step"]
    assert step["description"] == "One question (`ask: id`)."
    assert "quick replies" in step["properties"]["choices"]["description"]
    assert step["additionalProperties"] is False


@pytest.mark.parametrize("path", sorted(EXAMPLE.glob("*.yaml")), ids=lambda p: p.name)
def test_example_documents_validate_against_the_committed_schema(path: Path) -> None:
    check = validator()
    for document in documents(path):
        errors = [e.message for e in check.iter_errors(document)]
        assert errors == [], errors


@pytest.mark.parametrize(
    "document",
    [
        {"flow": "x", "steps": [{"ask": "a", "text": "t", "choise": []}]},
        {"flow": "x", "steps": [{"ask": "a", "text": "t", "input": "integr"}]},
        {"flow": "x", "timeout": "3 days", "steps": [{"ask": "a", "text": "t"}]},
        {"flow": "x", "steps": [{"ask": "a", "text": "t", "do": [{"tagg": "x"}]}]},
        {"fields": {"age": {"type": "string"}}},
        {"tags": ["a"], "sequence": "s"},
        {"keywords": [{"match": "a", "mode": "fuzzy", "reply": "b"}]},
        {"sequence": "s", "steps": [{"after": "1d", "at": "25:00", "text": "x"}]},
        {"sequence": "s", "steps": [{"after": "1 day", "text": "x"}]},
        {"sequence": "s", "quiet_hours": ["21:00"], "steps": [{"after": "1d", "text": "x"}]},
        {"sequence": "s", "restart": "resume", "steps": [{"after": "1d", "text": "x"}]},
        {"sequence": "s", "steps": [{"after": "1d", "txt": "x"}]},
        {"rich_menu": "m", "areas": [{"bounds": [0, 0, 9, 9], "tap": {"uri": "x"}, "lable": "a"}]},
        {"rich_menu": "m", "size": "huge", "areas": [{"bounds": [0, 0, 9, 9], "tap": {}}]},
        {"rich_menu": "m", "alias": "Tab A", "areas": []},
        {"segment": "s", "conditon": {"tag": "x"}},
    ],
)
def test_the_schema_rejects_what_the_models_reject(document: dict[str, Any]) -> None:
    assert list(validator().iter_errors(document))


def test_the_schema_accepts_a_single_message_for_send() -> None:
    document = {
        "flow": "x",
        "steps": [
            {"ask": "a", "text": "t", "do": [{"send": {"text": "hi"}}, {"send": [{"text": "hi"}]}]}
        ],
    }
    assert list(validator().iter_errors(document)) == []
