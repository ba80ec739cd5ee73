"""Request bodies checked against the official OpenAPI schemas plus LINE's documented limits.

The vendored specs (`spec/*.yml`, OpenAPI 3.0) model message, action, template and event
subtypes the OpenAPI way: the parent schema carries a `discriminator` and each subtype is
`allOf: [parent, {...}]`. Plain JSON Schema ignores `discriminator`, so a text message without
`text` would pass as a bare `Message`. `openapi_to_json_schema` rewrites every discriminated
parent into an explicit dispatch (`if type == "text" then TextMessage`), with the parent's own
properties kept as `<Name>__base` for the subtypes to extend, so validation really follows the
mapping. `nullable` becomes a `null` type; everything else in these specs is JSON Schema already.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PREFIX = "#/components/schemas/"

# LINE's documented limits that the OpenAPI schemas do not express (characters are counted in
# UTF-16 code units: a surrogate-pair emoji counts 2, as LINE's "character counting" page says).
TEXT_MAX = 5000
ALT_TEXT_MAX = 1500
ACTION_LABEL_MAX = 20
ACTION_DATA_MAX = 300
BUTTONS_ACTIONS_MAX = 4
CONFIRM_ACTIONS = 2
CAROUSEL_COLUMNS_MAX = 10
BUTTONS_TEXT_MAX = 160
BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX = 60
CONFIRM_TEXT_MAX = 240
CAROUSEL_TEXT_MAX = 120
CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX = 60
TEMPLATE_TITLE_MAX = 40


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of LINE's `details` array."""

    message: str
    property: str

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "property": self.property}


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def property_path(parts: Iterable[str | int]) -> str:
    """`["messages", 0, "text"]` → `messages[0].text` (LINE's `details[].property` style)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --- OpenAPI 3.0 → JSON Schema ----------------------------------------------------------------


def _schema_name(ref: str) -> str | None:
    return ref[len(SCHEMA_PREFIX) :] if ref.startswith(SCHEMA_PREFIX) else None


def _convert_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _convert_nullable(value) for key, value in node.items()}
        if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_convert_nullable(item) for item in node]
    return node


def openapi_to_json_schema(components: dict[str, Any]) -> dict[str, Any]:
    """Rewrite `components.schemas` so discriminators are enforced by a JSON Schema validator."""
    schemas: dict[str, Any] = _convert_nullable(copy.deepcopy(components.get("schemas", {})))
    for name in list(schemas):
        parent = schemas[name]
        discriminator = parent.get("discriminator") if isinstance(parent, dict) else None
        if not isinstance(discriminator, dict) or not discriminator.get("mapping"):
            continue
        prop = discriminator["propertyName"]
        mapping: dict[str, str] = discriminator["mapping"]
        base_name = f"{name}__base"
        base = {key: value for key, value in parent.items() if key != "discriminator"}
        schemas[base_name] = base
        parent_ref = SCHEMA_PREFIX + name
        for child_ref in mapping.values():
            child_name = _schema_name(child_ref)
            child = schemas.get(child_name) if child_name else None
            if not isinstance(child, dict):
                continue
            for part in child.get("allOf", []):
                if isinstance(part, dict) and part.get("$ref") == parent_ref:
                    part["$ref"] = SCHEMA_PREFIX + base_name
        dispatch: list[dict[str, Any]] = [{"$ref": SCHEMA_PREFIX + base_name}]
        for value, child_ref in mapping.items():
            dispatch.append(
                {
                    "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                    "then": {"$ref": child_ref},
                }
            )
        schemas[name] = {
            "type": "object",
            "required": [prop],
            "properties": {prop: {"type": "string", "enum": list(mapping)}},
            "allOf": dispatch,
        }
    return {"components": {"schemas": schemas}}


# --- error messages ---------------------------------------------------------------------------


def _between(low: Any, high: Any, what: str) -> str:
    if high is None:
        return f"{what} must be at least {low}"
    if low is None:
        return f"{what} must be at most {high}"
    return f"{what} must be between {low} and {high}"


def _detail(error: ValidationError) -> ErrorDetail:
    path: list[str | int] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "required":
        head = error.message.split(" is a required property")[0]
        try:
            path.append(str(ast.literal_eval(head)))
        except (ValueError, SyntaxError):
            path.append(head)
        message = "must be specified"
    elif kind in ("maxItems", "minItems"):
        message = _between(schema.get("minItems", 0), schema.get("maxItems"), "Size")
    elif kind in ("maxLength", "minLength"):
        message = _between(schema.get("minLength", 0), schema.get("maxLength"), "Length")
    elif kind in ("maximum", "minimum"):
        message = _between(schema.get("minimum"), schema.get("maximum"), "Value")
    elif kind == "enum":
        values = ", ".join(str(v) for v in error.validator_value)
        message = f"must be one of the following values: [{values}]"
    elif kind == "type":
        message = f"must be of type {error.validator_value}"
    elif kind == "pattern":
        message = f'must match "{error.validator_value}"'
    else:
        message = error.message
    return ErrorDetail(message=message, property=property_path(path))


def _leaf_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        if error.context:
            yield from _leaf_errors(error.context)
        else:
            yield error


class SpecSchemas:
    """The component schemas of one OpenAPI document, ready to validate instances."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.root = openapi_to_json_schema(document.get("components", {}))
        self._validators: dict[str, Draft202012Validator] = {}

    @property
    def names(self) -> list[str]:
        return list(self.root["components"]["schemas"])

    def validator(self, schema_name: str) -> Draft202012Validator:
        found = self._validators.get(schema_name)
        if found is None:
            if schema_name not in self.root["components"]["schemas"]:
                raise KeyError(schema_name)
            schema = {"$ref": SCHEMA_PREFIX + schema_name, **self.root}
            found = Draft202012Validator(schema)
            self._validators[schema_name] = found
        return found

    def errors(self, schema_name: str, instance: Any) -> list[ErrorDetail]:
        raw = self.validator(schema_name).iter_errors(instance)
        details = [_detail(error) for error in _leaf_errors(raw)]
        return _dedupe(sorted(details, key=lambda d: d.property))


def _dedupe(details: Iterable[ErrorDetail]) -> list[ErrorDetail]:
    seen: set[ErrorDetail] = set()
    out = []
    for detail in details:
        if detail not in seen:
            seen.add(detail)
            out.append(detail)
    return out


@cache
def load_spec(filename: str) -> SpecSchemas:
    """One of the vendored specs (`messaging-api.yml`, `manage-audience.yml`, `webhook.yml`),
    parsed once per process."""
    text = resources.files("bot.emulator").joinpath("spec", filename).read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return SpecSchemas(yaml.load(text, Loader=loader))


# --- LINE's limits beyond the schema ----------------------------------------------------------


def _too_long(value: Any, limit: int, path: Sequence[str | int]) -> list[ErrorDetail]:
    if isinstance(value, str) and utf16_len(value) > limit:
        return [ErrorDetail(f"Length must be between 0 and {limit}", property_path(path))]
    return []


def _action_limits(action: Any, path: list[str | int]) -> list[ErrorDetail]:
    if not isinstance(action, dict):
        return []
    found = _too_long(action.get("label"), ACTION_LABEL_MAX, [*path, "label"])
    if action.get("type") in ("postback", "datetimepicker", "richmenuswitch"):
        found += _too_long(action.get("data"), ACTION_DATA_MAX, [*path, "data"])
    return found


def action_limits(action: Any, path: list[str | int]) -> list[ErrorDetail]:
    """LINE's limits for one action object (label length, postback data length)."""
    return _action_limits(action, path)


def _actions_limits(actions: Any, path: list[str | int], most: int) -> list[ErrorDetail]:
    if not isinstance(actions, list):
        return []
    found: list[ErrorDetail] = []
    if len(actions) > most:
        found.append(ErrorDetail(f"Size must be between 1 and {most}", property_path(path)))
    for k, action in enumerate(actions):
        found += _action_limits(action, [*path, k])
    return found


def _template_limits(template: Any, path: list[str | int]) -> list[ErrorDetail]:
    if not isinstance(template, dict):
        return []
    kind = template.get("type")
    found: list[ErrorDetail] = []
    if kind == "buttons":
        decorated = bool(template.get("thumbnailImageUrl") or template.get("title"))
        most = BUTTONS_TEXT_WITH_IMAGE_OR_TITLE_MAX if decorated else BUTTONS_TEXT_MAX
        found += _too_long(template.get("text"), most, [*path, "text"])
        found += _too_long(template.get("title"), TEMPLATE_TITLE_MAX, [*path, "title"])
        found += _actions_limits(template.get("actions"), [*path, "actions"], BUTTONS_ACTIONS_MAX)
        found += _action_limits(template.get("defaultAction"), [*path, "defaultAction"])
    elif kind == "confirm":
        found += _too_long(template.get("text"), CONFIRM_TEXT_MAX, [*path, "text"])
        actions = template.get("actions")
        if isinstance(actions, list) and len(actions) != CONFIRM_ACTIONS:
            prop = property_path([*path, "actions"])
            found.append(ErrorDetail("Size must be between 2 and 2", prop))
        found += _actions_limits(actions, [*path, "actions"], CONFIRM_ACTIONS)
    elif kind in ("carousel", "image_carousel"):
        columns = template.get("columns")
        if not isinstance(columns, list):
            return found
        if len(columns) > CAROUSEL_COLUMNS_MAX:
            prop = property_path([*path, "columns"])
            found.append(ErrorDetail(f"Size must be between 1 and {CAROUSEL_COLUMNS_MAX}", prop))
        for c, column in enumerate(columns):
            if not isinstance(column, dict):
                continue
            cpath: list[str | int] = [*path, "columns", c]
            if kind == "image_carousel":
                found += _action_limits(column.get("action"), [*cpath, "action"])
                continue
            decorated = bool(column.get("thumbnailImageUrl") or column.get("title"))
            most = CAROUSEL_TEXT_WITH_IMAGE_OR_TITLE_MAX if decorated else CAROUSEL_TEXT_MAX
            found += _too_long(column.get("text"), most, [*cpath, "text"])
            found += _too_long(column.get("title"), TEMPLATE_TITLE_MAX, [*cpath, "title"])
            found += _actions_limits(column.get("actions"), [*cpath, "actions"], 3)
            found += _action_limits(column.get("defaultAction"), [*cpath, "defaultAction"])
    return found


def message_limits(message: Any, path: list[str | int]) -> list[ErrorDetail]:
    """LINE's limits for one message object (text length, labels, postback data, templates)."""
    if not isinstance(message, dict):
        return []
    kind = message.get("type")
    found: list[ErrorDetail] = []
    if kind in ("text", "textV2"):
        found += _too_long(message.get("text"), TEXT_MAX, [*path, "text"])
    if kind in ("template", "flex", "imagemap"):
        found += _too_long(message.get("altText"), ALT_TEXT_MAX, [*path, "altText"])
    if kind == "template":
        found += _template_limits(message.get("template"), [*path, "template"])
    quick = message.get("quickReply")
    items = quick.get("items") if isinstance(quick, dict) else None
    if isinstance(items, list):
        for j, item in enumerate(items):
            if isinstance(item, dict):
                found += _action_limits(
                    item.get("action"), [*path, "quickReply", "items", j, "action"]
                )
    return found


def line_limits(body: Any) -> list[ErrorDetail]:
    """Limits over every message of a send request body."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    found: list[ErrorDetail] = []
    for i, message in enumerate(body["messages"]):
        found += message_limits(message, ["messages", i])
    return found


def validate_request(
    schema_name: str, body: Any, spec: str = "messaging-api.yml"
) -> list[ErrorDetail]:
    """Schema errors first, then limit errors for properties the schema did not already flag.
    `spec`: the vendored document holding the schema (`manage-audience.yml` for audiences).

    Bots send the same messages again and again with a fresh reply token each time, and full
    schema validation costs milliseconds; so results are memoised by the body with its reply
    token (a plain string in the schema) replaced by a placeholder. A multicast's `to` (up to
    500 plain strings in the schema; their form is checked by the endpoint) is replaced by as
    many placeholders, so a campaign's multicasts share one validation instead of each walking
    its 500 recipients through the validator."""
    if isinstance(body, dict) and isinstance(body.get("replyToken"), str) and body["replyToken"]:
        body = {**body, "replyToken": "token"}
    if isinstance(body, dict) and _all_strings(body.get("to")):
        body = {**body, "to": ["U"] * len(body["to"])}
    try:
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return _validate_uncached(spec, schema_name, body)
    return list(_validate_cached(spec, schema_name, key))


def _all_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


@functools.lru_cache(maxsize=4096)
def _validate_cached(spec: str, schema_name: str, key: str) -> tuple[ErrorDetail, ...]:
    return tuple(_validate_uncached(spec, schema_name, json.loads(key)))


def _validate_uncached(spec: str, schema_name: str, body: Any) -> list[ErrorDetail]:
    schema_errors = load_spec(spec).errors(schema_name, body)
    flagged = {detail.property for detail in schema_errors}
    extra = [detail for detail in line_limits(body) if detail.property not in flagged]
    return _dedupe([*schema_errors, *extra])
