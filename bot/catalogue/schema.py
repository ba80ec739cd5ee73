"""The JSON Schema of the YAML language, generated from the models.

Editors validate and complete the YAML with it: a file whose first line is
`# yaml-language-server: $schema=../bot/catalogue/stepline.schema.json` is checked by the
VS Code YAML extension as it is typed. The committed `stepline.schema.json` is regenerated
by `stepline schema --write`; a test fails when it is out of date with the models.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from bot.catalogue.models import DOCUMENT_KINDS

SCHEMA_PATH = Path(__file__).with_name("stepline.schema.json")
SCHEMA_ID = "https://github.com/stepline/stepline/bot/catalogue/stepline.schema.json"
LIST_KINDS = ("fields", "tags", "keywords", "links")

# Words for the models and keys the docstrings do not describe (shown by editors on hover).
DESCRIPTIONS: dict[str, str] = {
    "Lists": "Declarations: typed friend fields, tags, keyword auto replies and tracked links."
    " One document may hold any of them; several such documents are merged.",
    "FieldDef": "A typed friend field (友だち情報欄).",
    "Choice": "One answer of a question, sent as a quick reply; typing its label counts too.",
    "NextRule": "`{if: <condition>, goto: step}`; without `if` it always matches.",
    "KeywordRule": "An auto reply (自動応答) to text a friend sends.",
    "LinkDef": "A tracked link (URLクリック測定): `{{ link('id') }}` in a text sends it.",
}
PROPERTY_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("Lists", "fields"): "Typed friend fields by name: `age: {type: integer, min: 0}`.",
    ("Lists", "tags"): "Every tag the catalogue uses (tags not declared here are errors).",
    ("Lists", "keywords"): "Auto replies, tried in order; the first match answers.",
    ("Lists", "links"): "Tracked links by name.",
    ("FlowDoc", "flow"): "The flow's name (used by start_flow, flow_completed, answered).",
    ("FlowDoc", "start_on"): "What starts the flow: follow, keyword, postback, tag_added…",
    ("FlowDoc", "timeout"): "Unanswered that long (30m, 24h, 7d) → abandoned; on_timeout runs.",
    ("FlowDoc", "restart"): "Whether a friend may go through the flow again.",
    ("FlowDoc", "steps"): "The questions, asked in order unless `next` says otherwise.",
    ("FlowDoc", "on_complete"): "Actions run when the flow reaches its end.",
    ("FlowDoc", "on_timeout"): "Actions run when the flow times out.",
    ("EventDoc", "event"): "The event's name, as outside systems report it"
    " (POST /api/v1/events); flows may start on it with `{event: NAME}`.",
    ("EventDoc", "when"): "The actions run only when this condition holds; else the event is"
    " recorded as skipped.",
    ("EventDoc", "do"): "Actions run for the friend; templates see the event's properties as"
    " `event.*`.",
    ("SequenceDoc", "sequence"): "The sequence's name (used by start_sequence, stop_sequence,"
    " in_sequence).",
    ("SequenceDoc", "anchor"): "A datetime field: makes this a reminder sequence whose steps"
    " use `before`; re-planned when the field changes, stopped when it is cleared. Without"
    " `start_on`, it starts on `{field_set: <anchor>}`.",
    ("SequenceDoc", "start_on"): "What enrols a friend: follow, flow_completed, tag_added,"
    " field_set or event (not keyword/postback).",
    ("SequenceDoc", "stop_on"): "What ends the friend's enrolment: tag_added, blocked, event,"
    " flow_completed or field_set.",
    ("SequenceDoc", "quiet_hours"): '`["21:00", "09:00"]` (account time): a step due inside is'
    " deferred to the end of the window, not dropped.",
    ("SequenceDoc", "restart"): "never: a friend already enrolled (or done) is not enrolled"
    " again; always: enrolled anew, from the first step.",
    ("SequenceDoc", "steps"): "The messages, in the order they are sent.",
    ("SequenceStep", "after"): "Time since enrolment (0m, 2h, 1d).",
    ("SequenceStep", "before"): "Time before the anchor field's datetime (reminders).",
    ("SequenceStep", "at"): '"HH:MM" account time: the step goes at that clock time.',
    ("SequenceStep", "when"): "Checked when the step is due; false → this step is skipped.",
    ("SequenceStep", "text"): "A text message (a template).",
    ("SequenceStep", "quick_replies"): "Quick replies of the text (at most 13).",
    ("SequenceStep", "messages"): "Messages sent (after the text, if any).",
    ("SequenceStep", "do"): "Actions run when the step is sent.",
    ("Step", "ask"): "The step's name (unique in the flow; `end` is reserved).",
    ("Step", "text"): "The question (a template: `{{ friend.name }}`).",
    ("Step", "messages"): "Messages sent before the question.",
    ("Step", "choices"): "Answers shown as quick replies (at most 13).",
    ("Step", "input"): "What a typed answer must be: text, integer, number, email, phone, date"
    " or datetime.",
    ("Step", "save"): "The field the answer is saved into.",
    ("Step", "invalid"): "Said when the answer is not valid.",
    ("Step", "max_retries"): "Invalid answers allowed before on_invalid runs and the flow"
    " moves on.",
    ("Step", "when"): "The step is asked only when this condition holds; else skipped.",
    ("Step", "do"): "Actions run when the step is answered.",
    ("Step", "next"): "Where to go after this step: a step name, `end`, or rules"
    " `[{if: …, goto: …}, {goto: …}]`.",
    ("Choice", "label"): "The quick reply's label (at most 20 characters).",
    ("Choice", "value"): "What is stored as the answer (default: the label).",
    ("Choice", "data"): "Postback data (default: made by the engine).",
    ("Choice", "datetime"): "A date/time picker instead of a plain button.",
    ("Choice", "next"): "Where this choice leads (overrides the step's next).",
}


def build_schema() -> dict[str, Any]:
    """One schema that accepts any document of the YAML language."""
    models = [(model, "validation") for model in DOCUMENT_KINDS.values()]
    refs, generated = models_json_schema(models, ref_template="#/$defs/{model}")  # type: ignore[arg-type]
    defs: dict[str, Any] = copy.deepcopy(generated.get("$defs", {}))
    lists: dict[str, Any] = {
        "type": "object",
        "title": "Lists",
        "properties": {},
        "additionalProperties": False,
        "minProperties": 1,
    }
    for kind in LIST_KINDS:
        name = DOCUMENT_KINDS[kind].__name__
        lists["properties"][kind] = defs.pop(name)["properties"][kind]
    defs["Lists"] = lists
    _allow_single_message(defs)
    _describe(defs)
    named = [
        {"$ref": refs[(model, "validation")]["$ref"]}
        for kind, model in DOCUMENT_KINDS.items()
        if kind not in LIST_KINDS
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "stepline catalogue document",
        "description": "One YAML document of a stepline catalogue: a flow (`flow: name`), an"
        " outside event (`event: name`), a step sequence or reminder (`sequence: name`), a"
        " segment, a broadcast, a rich menu (`rich_menu: name`) or declarations (`fields`,"
        " `tags`, `keywords`, `links`). Generated from bot/catalogue/models.py by"
        " `stepline schema --write`; do not edit.",
        "anyOf": [*named, {"$ref": "#/$defs/Lists"}],
        "$defs": dict(sorted(defs.items())),
    }


def _allow_single_message(defs: dict[str, Any]) -> None:
    """`send: {text: …}` is accepted as well as a list (the model wraps a single message)."""
    send = defs["SendAction"]["properties"]["send"]
    items = send["items"]
    title = send.pop("title", "Send")
    defs["SendAction"]["properties"]["send"] = {"title": title, "anyOf": [items, send]}


def _describe(defs: dict[str, Any]) -> None:
    for name, text in DESCRIPTIONS.items():
        if name in defs:
            defs[name].setdefault("description", text)
    for (name, key), text in PROPERTY_DESCRIPTIONS.items():
        properties = defs.get(name, {}).get("properties", {})
        if key in properties:
            properties[key].setdefault("description", text)


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def is_up_to_date(path: Path = SCHEMA_PATH) -> bool:
    try:
        return path.read_text(encoding="utf-8") == schema_text()
    except OSError:
        return False


def write_schema(path: Path = SCHEMA_PATH) -> bool:
    """Regenerate the schema file; True when its content changed."""
    text = schema_text()
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")
    return True
