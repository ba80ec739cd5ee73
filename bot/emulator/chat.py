"""Terminal chat with the bot through the emulator (`stepline chat`).

The logic is pure and tested: `render_messages` turns a batch of LINE message objects into
bubbles (lists of plain lines) and numbers every tappable thing (template and flex buttons, then
the last message's quick replies); `parse_input` maps a typed line to a command or a numbered
choice; `action_to_outgoing` maps an action object to what the user's tap sends. `run_chat` is
the thin I/O loop around them (rich for output, a poller thread for messages that arrive later).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from bot.emulator.client import EmulatorClient, EmulatorError
from bot.emulator.webhooks import PARAM_FORMATS

DATETIME_FORMATS = {"date": "YYYY-MM-DD", "time": "HH:mm", "datetime": "YYYY-MM-DDTHH:mm"}


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    number: int
    label: str
    action: dict[str, Any]


@dataclass
class Bubble:
    kind: str
    lines: list[str]
    sender: str | None = None


@dataclass
class Rendered:
    bubbles: list[Bubble] = field(default_factory=list)
    quick_replies: list[Choice] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)


def action_label(action: dict[str, Any]) -> str:
    """What a button shows: its label, else what it would send or open."""
    for key in ("label", "displayText", "text", "uri", "data"):
        value = action.get(key)
        if isinstance(value, str) and value:
            return value
    return str(action.get("type", "?"))


def quick_reply_line(choices: list[Choice]) -> str:
    """`[1] 女性  [2] 男性`."""
    return "  ".join(f"[{c.number}] {c.label}" for c in choices)


class _Numberer:
    def __init__(self) -> None:
        self.choices: list[Choice] = []

    def add(self, action: Any) -> str:
        if not isinstance(action, dict):
            return "[?] (no action)"
        choice = Choice(len(self.choices) + 1, action_label(action), action)
        self.choices.append(choice)
        suffix = " 🔗" if action.get("type") == "uri" else ""
        return f"[{choice.number}] {choice.label}{suffix}"


def _template_lines(template: dict[str, Any], numberer: _Numberer) -> list[str]:
    kind = template.get("type")
    lines: list[str] = []
    if kind in ("buttons", "confirm"):
        if template.get("thumbnailImageUrl"):
            lines.append(f"[image] {template['thumbnailImageUrl']}")
        if template.get("title"):
            lines.append(f"■ {template['title']}")
        if template.get("text"):
            lines.append(str(template["text"]))
        lines += ["  " + numberer.add(a) for a in template.get("actions") or []]
    elif kind == "carousel":
        for index, column in enumerate(template.get("columns") or []):
            if not isinstance(column, dict):
                continue
            if index:
                lines.append("─" * 12)
            if column.get("title"):
                lines.append(f"■ {column['title']}")
            if column.get("text"):
                lines.append(str(column["text"]))
            lines += ["  " + numberer.add(a) for a in column.get("actions") or []]
    elif kind == "image_carousel":
        for column in template.get("columns") or []:
            if isinstance(column, dict):
                lines.append(f"[image] {column.get('imageUrl', '')}")
                lines.append("  " + numberer.add(column.get("action")))
    else:
        lines.append(f"[{kind} template]")
    return lines


def _flex_component_lines(component: Any, numberer: _Numberer) -> list[str]:
    if not isinstance(component, dict):
        return []
    kind = component.get("type")
    if kind == "box":
        lines: list[str] = []
        for child in component.get("contents") or []:
            lines += _flex_component_lines(child, numberer)
        return lines
    if kind == "text":
        spans = component.get("contents") or []
        text = "".join(str(s.get("text", "")) for s in spans if isinstance(s, dict))
        return [text or str(component.get("text", ""))]
    if kind == "button":
        return ["  " + numberer.add(component.get("action"))]
    if kind == "image":
        return [f"[image] {component.get('url', '')}"]
    if kind == "video":
        return [f"[video] {component.get('url', '')}"]
    return []


def _flex_lines(container: Any, numberer: _Numberer) -> list[str]:
    if not isinstance(container, dict):
        return []
    if container.get("type") == "carousel":
        lines: list[str] = []
        for index, bubble in enumerate(container.get("contents") or []):
            if index:
                lines.append("─" * 12)
            lines += _flex_lines(bubble, numberer)
        return lines
    lines = []
    for part in ("header", "hero", "body", "footer"):
        lines += _flex_component_lines(container.get(part), numberer)
    return [line for line in lines if line]


def _message_bubble(message: dict[str, Any], numberer: _Numberer) -> Bubble:
    kind = str(message.get("type", "?"))
    lines: list[str]
    if kind in ("text", "textV2"):
        lines = str(message.get("text", "")).split("\n")
    elif kind == "sticker":
        lines = [f"[sticker {message.get('packageId')}/{message.get('stickerId')}]"]
    elif kind in ("image", "video", "audio"):
        lines = [f"[{kind}] {message.get('originalContentUrl', '')}"]
    elif kind == "location":
        lines = [
            f"📍 {message.get('title', '')}",
            f"{message.get('address', '')} ({message.get('latitude')}, {message.get('longitude')})",
        ]
    elif kind == "template":
        template = message.get("template")
        lines = _template_lines(template, numberer) if isinstance(template, dict) else []
    elif kind == "flex":
        lines = _flex_lines(message.get("contents"), numberer) or [str(message.get("altText", ""))]
    elif kind == "imagemap":
        lines = [f"[imagemap] {message.get('altText', '')}"]
        lines += ["  " + numberer.add(a) for a in message.get("actions") or []]
    elif kind == "coupon":
        lines = [f"[coupon {message.get('couponId', '')}]"]
    else:
        lines = [f"[{kind}]"]
    sender = message.get("sender")
    name = sender.get("name") if isinstance(sender, dict) else None
    return Bubble(kind=kind, lines=lines, sender=name if isinstance(name, str) else None)


def render_messages(messages: list[dict[str, Any]]) -> Rendered:
    """Bubbles for a batch of messages, with buttons numbered first (in message order) and the
    last message's quick replies after them (LINE shows only the last message's quick replies)."""
    numberer = _Numberer()
    bubbles = [_message_bubble(m, numberer) for m in messages if isinstance(m, dict)]
    quick: list[Choice] = []
    if messages and isinstance(messages[-1], dict):
        quick_reply = messages[-1].get("quickReply")
        items = quick_reply.get("items") if isinstance(quick_reply, dict) else None
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("action"), dict):
                numberer.add(item["action"])
                quick.append(numberer.choices[-1])
    return Rendered(bubbles=bubbles, quick_replies=quick, choices=list(numberer.choices))


# --- what a tap sends -------------------------------------------------------------------------


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendPostback:
    data: str
    display_text: str | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class AskDatetime:
    """A datetime picker: the user must type a value, then `datetime_postback` sends it."""

    mode: str
    data: str
    initial: str | None = None
    min: str | None = None
    max: str | None = None

    @property
    def hint(self) -> str:
        return DATETIME_FORMATS.get(self.mode, "value")


@dataclass(frozen=True)
class ShowInfo:
    """Nothing is sent to the bot (a link, a clipboard copy, a camera…); just tell the user."""

    text: str


Outgoing = SendText | SendPostback | AskDatetime | ShowInfo


def action_to_outgoing(action: dict[str, Any]) -> Outgoing:
    kind = action.get("type")
    if kind == "message":
        return SendText(str(action.get("text", action.get("label", ""))))
    if kind == "postback":
        display = action.get("displayText") or action.get("text")
        return SendPostback(str(action.get("data", "")), str(display) if display else None)
    if kind == "datetimepicker":
        return AskDatetime(
            mode=str(action.get("mode", "datetime")),
            data=str(action.get("data", "")),
            initial=action.get("initial"),
            min=action.get("min"),
            max=action.get("max"),
        )
    if kind == "richmenuswitch":
        params = {"newRichMenuAliasId": str(action.get("richMenuAliasId", "")), "status": "SUCCESS"}
        return SendPostback(str(action.get("data", "")), None, params)
    if kind == "uri":
        return ShowInfo(f"🔗 {action.get('uri', '')}")
    if kind == "clipboard":
        return ShowInfo(f"📋 copied: {action.get('clipboardText', '')}")
    return ShowInfo(f"({kind} actions are not available in the terminal chat)")


def datetime_postback(ask: AskDatetime, value: str) -> SendPostback:
    """The postback a datetime picker sends for `value` (empty = the picker's initial value).
    Raises ValueError for a value not in the mode's format or outside min/max."""
    value = value.strip() or (ask.initial or "")
    pattern = PARAM_FORMATS.get(ask.mode)
    if pattern is None or not pattern.match(value):
        raise ValueError(f"enter the {ask.mode} as {ask.hint}")
    # The formats are fixed-width, so string order is time order.
    if ask.min and value < ask.min:
        raise ValueError(f"the earliest allowed is {ask.min}")
    if ask.max and value > ask.max:
        raise ValueError(f"the latest allowed is {ask.max}")
    return SendPostback(ask.data, None, {ask.mode: value})


# --- typed input ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str  # quit | follow | unfollow | help


@dataclass(frozen=True)
class Pick:
    choice: Choice


Input = Command | Pick | SendText | None

COMMANDS = {"/quit": "quit", "/exit": "quit", "/follow": "follow", "/unfollow": "unfollow"}
COMMANDS["/help"] = "help"
HELP = (
    "Type a message and press Enter. A number picks the numbered button or quick reply "
    "(a number outside the list is sent as text). /text <words> sends words as they are. "
    "/follow  /unfollow (block)  /quit"
)


def parse_input(line: str, choices: list[Choice]) -> Input:
    """What a typed line means: a command, a numbered pick, text to send, or nothing."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("/text "):
        return SendText(text[len("/text ") :])
    if text.lower() in COMMANDS:
        return Command(COMMANDS[text.lower()])
    if text.isdigit() and text.isascii():
        number = int(text)
        for choice in choices:
            if choice.number == number:
                return Pick(choice)
    return SendText(text)


# --- the I/O loop -----------------------------------------------------------------------------


class ChatSession:
    """State shared by the input loop and the poller: the last seen seq and current choices."""

    def __init__(self, client: Any, user_id: str, show: Callable[[Rendered], None]) -> None:
        self.client = client
        self.user_id = user_id
        self.show = show
        self.since = 0
        self.choices: list[Choice] = []
        self.lock = threading.Lock()

    def poll(self) -> None:
        with self.lock:
            answer = self.client.messages(self.user_id, self.since)
            items = answer.get("messages") or []
            self.since = int(answer.get("last_seq", self.since))
            if not items:
                return
            rendered = render_messages([item["message"] for item in items])
            self.choices = rendered.choices
        self.show(rendered)

    def current_choices(self) -> list[Choice]:
        with self.lock:
            return list(self.choices)


def run_chat(
    base_url: str, name: str, user_id: str | None = None, poll_seconds: float = 1.0
) -> None:
    """Chat in the terminal as a simulated user until /quit, Ctrl-C or Ctrl-D."""
    console = Console()
    client = EmulatorClient(base_url)

    def show(rendered: Rendered) -> None:
        for bubble in rendered.bubbles:
            title = Text(bubble.sender) if bubble.sender else None
            console.print(Panel(Text("\n".join(bubble.lines)), title=title, expand=False))
        if rendered.quick_replies:
            console.print(Text(quick_reply_line(rendered.quick_replies), style="cyan"))

    def note(text: str, style: str = "dim") -> None:
        console.print(Text(text, style=style))

    def report(result: dict[str, Any]) -> None:
        status = result.get("status")
        if status != 200:
            note(f"(bot answered {status}: {result.get('error') or ''})", "yellow")

    user: dict[str, Any]
    try:
        if user_id:
            try:
                user = client.user(user_id)
            except EmulatorError as exc:
                if exc.status != 404:
                    raise
                user = client.create_user(name, user_id=user_id)
        else:
            user = client.create_user(name)
    except (EmulatorError, OSError) as exc:
        console.print(Text(f"cannot reach the emulator at {base_url}: {exc}", style="red"))
        raise SystemExit(1) from exc
    uid = str(user["user_id"])
    session = ChatSession(client, uid, show)
    note(f"{user['name']} ({uid}) — {HELP}")
    if user.get("state") != "friend":
        report(client.follow(uid))
    session.poll()

    stop = threading.Event()

    def poller() -> None:
        while not stop.wait(poll_seconds):
            try:
                session.poll()
            except Exception as exc:  # keep polling through a restart of the emulator
                note(f"(poll failed: {exc})", "red")

    threading.Thread(target=poller, name="chat-poller", daemon=True).start()
    try:
        while True:
            try:
                line = console.input("[bold green]> [/]")
            except EOFError:
                break
            parsed = parse_input(line, session.current_choices())
            try:
                if not _act(client, uid, parsed, console.input, note, report):
                    break
            except EmulatorError as exc:
                note(f"(emulator: {exc.message})", "red")
            session.poll()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


def _act(
    client: Any,
    uid: str,
    parsed: Input,
    ask: Callable[[str], str],
    note: Callable[..., None],
    report: Callable[[dict[str, Any]], None],
) -> bool:
    """Carry out one parsed input; False means quit."""
    if parsed is None:
        return True
    if isinstance(parsed, Command):
        if parsed.name == "quit":
            return False
        if parsed.name == "help":
            note(HELP)
        elif parsed.name == "follow":
            report(client.follow(uid))
        elif parsed.name == "unfollow":
            report(client.unfollow(uid))
            note("(you blocked the account)")
        return True
    outgoing: Outgoing
    if isinstance(parsed, Pick):
        outgoing = action_to_outgoing(parsed.choice.action)
        if isinstance(outgoing, SendText):
            note(f"› {outgoing.text}")
        elif isinstance(outgoing, AskDatetime) or (
            isinstance(outgoing, SendPostback) and not outgoing.display_text
        ):
            note(f"› ({parsed.choice.label})")
    else:
        outgoing = parsed
    if isinstance(outgoing, AskDatetime):
        outgoing = _ask_datetime(outgoing, ask, note)
    if isinstance(outgoing, ShowInfo):
        note(outgoing.text)
    elif isinstance(outgoing, SendText):
        report(client.text(uid, outgoing.text))
    elif isinstance(outgoing, SendPostback):
        if outgoing.display_text:
            note(f"› {outgoing.display_text}")
        report(client.postback(uid, outgoing.data, outgoing.display_text, outgoing.params))
    return True


def _ask_datetime(
    picker: AskDatetime, ask: Callable[[str], str], note: Callable[..., None]
) -> SendPostback:
    initial = f" [{picker.initial}]" if picker.initial else ""
    while True:
        value = ask(f"{picker.mode} ({picker.hint}){initial}: ")
        try:
            return datetime_postback(picker, value)
        except ValueError as exc:
            note(str(exc), "yellow")
