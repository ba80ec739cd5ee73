"""YAML message objects → LINE Messaging API JSON, checked against LINE's schema.

Templates are rendered by a caller-supplied `render` function, so the same conversion serves
load-time validation (identity render) and send time (the friend's values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.catalogue.models import (
    ButtonAction,
    ButtonsMessageDef,
    CarouselMessageDef,
    ConfirmMessageDef,
    FlexMessageDef,
    ImageMessageDef,
    MessageDef,
    PickerSpec,
    StickerMessageDef,
    TextMessageDef,
)
from bot.catalogue.templates import contains_template
from bot.line.limits import (
    MAX_ACTION_TEXT,
    MAX_ALT_TEXT,
    MAX_BUTTONS_TEXT,
    MAX_CAROUSEL_TEXT,
    MAX_CONFIRM_TEXT,
    MAX_DECORATED_TEXT,
    MAX_FLEX_ALT_TEXT,
    MAX_IMAGE_URL,
    MAX_LABEL,
    MAX_POSTBACK_DATA,
    MAX_QUICK_REPLIES,
    MAX_TEMPLATE_TITLE,
    MAX_TEXT_UTF16,
    MAX_URI,
    truncate_utf16,
    utf16_len,
)
from bot.line.message_schema import message_problems

Render = Callable[[str], str]


def identity(text: str) -> str:
    return text


def text_message(text: str, quick_replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "text", "text": text}
    if quick_replies:
        message["quickReply"] = {"items": [{"type": "action", "action": a} for a in quick_replies]}
    return message


def picker_action(label: str, data: str, spec: str | PickerSpec) -> dict[str, Any]:
    picker = spec if isinstance(spec, PickerSpec) else PickerSpec(mode=spec)  # type: ignore[arg-type]
    action: dict[str, Any] = {
        "type": "datetimepicker",
        "label": label,
        "data": data,
        "mode": picker.mode,
    }
    for key in ("initial", "min", "max"):
        value = getattr(picker, key)
        if value is not None:
            action[key] = value
    return action


def button_action(action: ButtonAction, render: Render) -> dict[str, Any]:
    label = render(action.label)
    if action.datetime is not None:
        assert action.data is not None
        return picker_action(label, render(action.data), action.datetime)
    if action.text is not None:
        return {"type": "message", "label": label, "text": render(action.text)}
    if action.uri is not None:
        return {"type": "uri", "label": label, "uri": render(action.uri)}
    assert action.data is not None
    postback: dict[str, Any] = {"type": "postback", "label": label, "data": render(action.data)}
    postback["displayText"] = render(action.display_text) if action.display_text else label
    return postback


def to_api_json(message: MessageDef, render: Render = identity) -> dict[str, Any]:
    """One YAML message as the JSON the Messaging API takes."""
    if isinstance(message, TextMessageDef):
        quick = [button_action(a, render) for a in message.quick_replies or []]
        return text_message(render(message.text), quick)
    if isinstance(message, ImageMessageDef):
        url = render(message.image.url)
        preview = render(message.image.preview) if message.image.preview else url
        return {"type": "image", "originalContentUrl": url, "previewImageUrl": preview}
    if isinstance(message, StickerMessageDef):
        return {
            "type": "sticker",
            "packageId": message.sticker.package_id,
            "stickerId": message.sticker.sticker_id,
        }
    if isinstance(message, ButtonsMessageDef):
        spec = message.buttons
        template: dict[str, Any] = {
            "type": "buttons",
            "text": render(spec.text),
            "actions": [button_action(a, render) for a in spec.actions],
        }
        if spec.title:
            template["title"] = render(spec.title)
        if spec.image:
            template["thumbnailImageUrl"] = render(spec.image)
        return _template(spec.alt_text or spec.text, template, render)
    if isinstance(message, ConfirmMessageDef):
        spec_c = message.confirm
        template = {
            "type": "confirm",
            "text": render(spec_c.text),
            "actions": [button_action(a, render) for a in spec_c.actions],
        }
        return _template(spec_c.alt_text or spec_c.text, template, render)
    if isinstance(message, CarouselMessageDef):
        columns = []
        for column in message.carousel.columns:
            col: dict[str, Any] = {
                "text": render(column.text),
                "actions": [button_action(a, render) for a in column.actions],
            }
            if column.title:
                col["title"] = render(column.title)
            if column.image:
                col["thumbnailImageUrl"] = render(column.image)
            columns.append(col)
        alt = message.carousel.alt_text or message.carousel.columns[0].text
        return _template(alt, {"type": "carousel", "columns": columns}, render)
    if isinstance(message, FlexMessageDef):
        return {
            "type": "flex",
            "altText": render(message.flex.alt_text),
            "contents": message.flex.contents,
        }
    raise TypeError(f"unknown message definition {type(message).__name__}")


def _template(alt_text: str, template: dict[str, Any], render: Render) -> dict[str, Any]:
    return {"type": "template", "altText": render(alt_text)[:MAX_ALT_TEXT], "template": template}


def limit_problems(api_json: dict[str, Any]) -> list[str]:
    """LINE's limits that its schema does not express; empty when the message is fine."""
    problems: list[str] = []
    kind = api_json.get("type")
    if kind == "text":
        _longer(problems, "text", api_json.get("text"), MAX_TEXT_UTF16)
    if kind == "flex":
        _longer(problems, "altText", api_json.get("altText"), MAX_FLEX_ALT_TEXT)
    if kind == "image":
        for key in ("originalContentUrl", "previewImageUrl"):
            _image_url(problems, key, api_json.get(key))
    template = api_json.get("template", {})
    _template_limits(problems, template)
    items = api_json.get("quickReply", {}).get("items", [])
    if len(items) > MAX_QUICK_REPLIES:
        problems.append(f"{len(items)} quick replies; LINE allows {MAX_QUICK_REPLIES}")
    actions = [item["action"] for item in items]
    actions += template.get("actions", [])
    for column in template.get("columns", []):
        actions += column.get("actions", [])
    for action in actions:
        _action_limits(problems, action)
    return problems


def _longer(problems: list[str], what: str, text: Any, limit: int) -> None:
    """`what` is longer than LINE allows (counted as LINE counts: UTF-16 units)."""
    if isinstance(text, str) and utf16_len(text) > limit:
        problems.append(f"{what} is {utf16_len(text)} UTF-16 units; LINE allows {limit}")


def _image_url(problems: list[str], what: str, url: Any) -> None:
    if not isinstance(url, str):
        return
    _longer(problems, what, url, MAX_IMAGE_URL)
    if not contains_template(url) and not url.startswith("https://"):
        problems.append(f"{what} {url[:60]!r} is not an https:// URL; LINE takes only HTTPS")


def _template_limits(problems: list[str], template: dict[str, Any]) -> None:
    """Buttons, confirm and carousel texts (shorter under a title or an image), titles."""
    kind = template.get("type")
    if kind == "buttons":
        decorated = bool(template.get("title") or template.get("thumbnailImageUrl"))
        limit = MAX_DECORATED_TEXT if decorated else MAX_BUTTONS_TEXT
        _longer(
            problems,
            "buttons text" + " (with a title or image)" * decorated,
            template.get("text"),
            limit,
        )
        _longer(problems, "buttons title", template.get("title"), MAX_TEMPLATE_TITLE)
        _image_url(problems, "buttons image", template.get("thumbnailImageUrl"))
    elif kind == "confirm":
        _longer(problems, "confirm text", template.get("text"), MAX_CONFIRM_TEXT)
    elif kind == "carousel":
        for index, column in enumerate(template.get("columns", [])):
            decorated = bool(column.get("title") or column.get("thumbnailImageUrl"))
            limit = MAX_DECORATED_TEXT if decorated else MAX_CAROUSEL_TEXT
            what = f"carousel column {index + 1}"
            _longer(
                problems,
                f"{what} text" + " (with a title or image)" * decorated,
                column.get("text"),
                limit,
            )
            _longer(problems, f"{what} title", column.get("title"), MAX_TEMPLATE_TITLE)
            _image_url(problems, f"{what} image", column.get("thumbnailImageUrl"))


def _action_limits(problems: list[str], action: dict[str, Any]) -> None:
    label = action.get("label", "")
    if len(label) > MAX_LABEL:
        problems.append(f"label {label!r} is {len(label)} characters; LINE allows {MAX_LABEL}")
    data = action.get("data")
    if data is not None and len(data) > MAX_POSTBACK_DATA:
        problems.append(f"postback data is {len(data)} characters; LINE allows {MAX_POSTBACK_DATA}")
    _longer(problems, f"the text of action {label!r}", action.get("text"), MAX_ACTION_TEXT)
    _longer(
        problems, f"the displayText of action {label!r}", action.get("displayText"), MAX_ACTION_TEXT
    )
    _longer(problems, f"the uri of action {label!r}", action.get("uri"), MAX_URI)


class InvalidMessage(ValueError):
    """LINE's schema refuses the message: `problems` says why, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"not a valid LINE message: {'; '.join(problems)}")
        self.problems = problems


def build(message: MessageDef, render: Render = identity) -> dict[str, Any]:
    """Render and check against LINE's schema (`bot.line.message_schema`); the API JSON.

    For messages coming in (the YAML as it loads, the admin API). Sending what was checked on
    the way in only needs `to_api_json`: a template renders strings, and `fit_rendered`
    keeps them within LINE's limits."""
    api_json = to_api_json(message, render)
    problems = message_problems(api_json)
    if problems:
        raise InvalidMessage(problems)
    return api_json


def fit_rendered(api_json: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """Make a rendered message fit LINE's limits; `check` cannot see what templates render to
    (a long `friend.name` in a label). Returns the message (None if it rendered empty) and
    what was changed, so the caller can log it."""
    changes: list[str] = []
    if api_json.get("type") == "text":
        if not api_json["text"].strip():
            return None, ["text rendered empty; message dropped"]
        if utf16_len(api_json["text"]) > MAX_TEXT_UTF16:
            api_json["text"] = truncate_utf16(api_json["text"], MAX_TEXT_UTF16)
            changes.append(f"text cut to {MAX_TEXT_UTF16} UTF-16 units")
    actions = [item["action"] for item in api_json.get("quickReply", {}).get("items", [])]
    template = api_json.get("template", {})
    actions += template.get("actions", [])
    for column in template.get("columns", []):
        actions += column.get("actions", [])
    if "altText" in api_json and not str(api_json["altText"]).strip():
        # A template that failed renders empty (never raw Jinja); LINE refuses an empty one.
        api_json["altText"] = "…"
        changes.append("altText rendered empty; '…' sent instead")
    for action in actions:
        label = action.get("label")
        if isinstance(label, str) and not label.strip():
            action["label"] = "…"
            changes.append("label rendered empty; '…' sent instead")
        elif isinstance(label, str) and len(label) > MAX_LABEL:
            action["label"] = label[: MAX_LABEL - 1] + "…"
            changes.append(f"label {label!r} cut to {MAX_LABEL} characters")
        if isinstance(action.get("displayText"), str) and not action["displayText"].strip():
            action["displayText"] = "…"
            changes.append("displayText rendered empty; '…' sent instead")
        elif action.get("displayText") and len(action["displayText"]) > 300:
            action["displayText"] = action["displayText"][:300]
            changes.append("displayText cut to 300 characters")
    return api_json, changes
