"""The terminal chat: rendering, numbering, input parsing, and a short real session."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from linebot.v3.messaging import (
    MessageAction,
    MessagingApi,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)

from bot.cli.emulator import chat_command, emulator_command
from bot.emulator.chat import (
    AskDatetime,
    ChatSession,
    Choice,
    Command,
    Pick,
    Rendered,
    SendPostback,
    SendText,
    ShowInfo,
    _act,
    action_to_outgoing,
    datetime_postback,
    parse_input,
    quick_reply_line,
    render_messages,
)
from tests.emulator.conftest import Emu, Hook

GENDER = {
    "type": "text",
    "text": "花子さん、性別を教えてください",
    "quickReply": {
        "items": [
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": "女性",
                    "data": "gender=f",
                    "displayText": "女性",
                },
            },
            {"type": "action", "action": {"type": "message", "label": "男性", "text": "男性"}},
        ]
    },
}

BUTTONS = {
    "type": "template",
    "altText": "メニュー",
    "template": {
        "type": "buttons",
        "title": "メニュー",
        "text": "ご用件は?",
        "actions": [
            {"type": "postback", "label": "予約", "data": "reserve"},
            {"type": "uri", "label": "サイト", "uri": "https://example.com"},
            {"type": "datetimepicker", "label": "日時", "data": "when", "mode": "datetime"},
        ],
    },
}

FLEX = {
    "type": "flex",
    "altText": "クーポン",
    "contents": {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "text", "text": "冬の限定クーポン"},
                {
                    "type": "text",
                    "contents": [{"type": "span", "text": "20%"}, {"type": "span", "text": "OFF"}],
                },
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "action": {"type": "message", "label": "使う", "text": "クーポンを使う"},
                }
            ],
        },
    },
}


# --- rendering --------------------------------------------------------------------------------


def test_quick_replies_are_numbered() -> None:
    rendered = render_messages([GENDER])
    assert rendered.bubbles[0].lines == ["花子さん、性別を教えてください"]
    assert quick_reply_line(rendered.quick_replies) == "[1] 女性  [2] 男性"
    assert [c.number for c in rendered.choices] == [1, 2]


def test_buttons_first_then_the_last_messages_quick_replies() -> None:
    earlier_with_quick = {**GENDER, "text": "old"}
    rendered = render_messages([earlier_with_quick, BUTTONS, FLEX, GENDER])
    labels = [(c.number, c.label) for c in rendered.choices]
    assert labels == [
        (1, "予約"),
        (2, "サイト"),
        (3, "日時"),
        (4, "使う"),
        (5, "女性"),
        (6, "男性"),
    ]
    buttons = rendered.bubbles[1].lines
    assert buttons == ["■ メニュー", "ご用件は?", "  [1] 予約", "  [2] サイト 🔗", "  [3] 日時"]
    assert rendered.bubbles[2].lines == ["冬の限定クーポン", "20%OFF", "  [4] 使う"]


@pytest.mark.parametrize(
    ("message", "lines"),
    [
        ({"type": "text", "text": "一行目\n二行目"}, ["一行目", "二行目"]),
        ({"type": "sticker", "packageId": "446", "stickerId": "1988"}, ["[sticker 446/1988]"]),
        (
            {
                "type": "image",
                "originalContentUrl": "https://x/a.jpg",
                "previewImageUrl": "https://x/p.jpg",
            },
            ["[image] https://x/a.jpg"],
        ),
        (
            {
                "type": "template",
                "altText": "a",
                "template": {
                    "type": "confirm",
                    "text": "よろしいですか?",
                    "actions": [
                        {"type": "message", "label": "はい", "text": "はい"},
                        {"type": "message", "label": "いいえ", "text": "いいえ"},
                    ],
                },
            },
            ["よろしいですか?", "  [1] はい", "  [2] いいえ"],
        ),
        (
            {
                "type": "template",
                "altText": "a",
                "template": {
                    "type": "carousel",
                    "columns": [
                        {
                            "title": "A",
                            "text": "a",
                            "actions": [{"type": "postback", "label": "選ぶ", "data": "a"}],
                        },
                        {
                            "text": "b",
                            "actions": [{"type": "postback", "label": "選ぶ", "data": "b"}],
                        },
                    ],
                },
            },
            ["■ A", "a", "  [1] 選ぶ", "────────────", "b", "  [2] 選ぶ"],
        ),
        (
            {
                "type": "location",
                "title": "店",
                "address": "東京",
                "latitude": 35.0,
                "longitude": 139.0,
            },
            ["📍 店", "東京 (35.0, 139.0)"],
        ),
        (
            {"type": "video", "originalContentUrl": "https://x/v.mp4", "previewImageUrl": "p"},
            ["[video] https://x/v.mp4"],
        ),
    ],
)
def test_message_rendering(message: dict[str, Any], lines: list[str]) -> None:
    assert render_messages([message]).bubbles[0].lines == lines


def test_sender_name_is_the_bubble_title() -> None:
    message = {"type": "text", "text": "hi", "sender": {"name": "スタッフ"}}
    assert render_messages([message]).bubbles[0].sender == "スタッフ"


# --- what a choice sends ----------------------------------------------------------------------


def test_actions_map_to_what_a_tap_sends() -> None:
    assert action_to_outgoing({"type": "message", "label": "男性", "text": "男性"}) == SendText(
        "男性"
    )
    assert action_to_outgoing(
        {"type": "postback", "label": "女性", "data": "gender=f", "displayText": "女性です"}
    ) == SendPostback("gender=f", "女性です")
    assert action_to_outgoing({"type": "postback", "label": "x", "data": "d"}) == SendPostback(
        "d", None
    )
    picker = action_to_outgoing(
        {
            "type": "datetimepicker",
            "data": "when",
            "mode": "date",
            "initial": "2026-12-01",
            "min": "2026-11-01",
        }
    )
    assert picker == AskDatetime("date", "when", "2026-12-01", "2026-11-01", None)
    assert action_to_outgoing(
        {"type": "richmenuswitch", "richMenuAliasId": "b", "data": "tab=b"}
    ) == SendPostback("tab=b", None, {"newRichMenuAliasId": "b", "status": "SUCCESS"})
    assert isinstance(action_to_outgoing({"type": "uri", "uri": "https://x"}), ShowInfo)
    assert isinstance(action_to_outgoing({"type": "camera", "label": "c"}), ShowInfo)


@pytest.mark.parametrize(
    ("mode", "value", "params"),
    [
        ("date", "2026-12-01", {"date": "2026-12-01"}),
        ("time", "10:00", {"time": "10:00"}),
        ("datetime", "2026-12-01T10:00", {"datetime": "2026-12-01T10:00"}),
    ],
)
def test_datetime_picker_values(mode: str, value: str, params: dict[str, str]) -> None:
    assert datetime_postback(AskDatetime(mode, "when"), value) == SendPostback("when", None, params)


def test_datetime_picker_checks_format_bounds_and_uses_initial() -> None:
    picker = AskDatetime("date", "d", initial="2026-12-01", min="2026-11-01", max="2026-12-31")
    assert datetime_postback(picker, "") == SendPostback("d", None, {"date": "2026-12-01"})
    for bad in ("2026/12/01", "2026-10-31", "2027-01-01"):
        with pytest.raises(ValueError):
            datetime_postback(picker, bad)


def test_parse_input() -> None:
    choices = [Choice(1, "女性", {"type": "postback"}), Choice(2, "男性", {"type": "message"})]
    assert parse_input("2", choices) == Pick(choices[1])
    assert parse_input(" 1 ", choices) == Pick(choices[0])
    assert parse_input("35", choices) == SendText("35")  # an answer, not a choice
    assert parse_input("/text 1", choices) == SendText("1")
    assert parse_input("こんにちは", choices) == SendText("こんにちは")
    assert parse_input("/quit", choices) == Command("quit")
    assert parse_input("/follow", []) == Command("follow")
    assert parse_input("/unfollow", []) == Command("unfollow")
    assert parse_input("   ", choices) is None
    assert parse_input("１", choices) == SendText("１")  # full-width digits are text


# --- against a running emulator ---------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str, style: str = "dim") -> None:
        self.notes.append(text)


def test_session_picks_a_quick_reply(
    emulator: Emu, hook: Hook, api: MessagingApi, friend: str
) -> None:
    actions = [
        PostbackAction(label="女性", data="gender=f", displayText="女性"),
        MessageAction(label="男性", text="男性"),
    ]
    question = TextMessage(
        text="性別は?", quickReply=QuickReply(items=[QuickReplyItem(action=a) for a in actions])
    )
    api.push_message(PushMessageRequest(to=friend, messages=[question]))
    shown: list[Rendered] = []
    session = ChatSession(emulator.client, friend, shown.append)
    session.poll()
    assert quick_reply_line(shown[0].quick_replies) == "[1] 女性  [2] 男性"
    session.poll()
    assert len(shown) == 1  # nothing new, nothing shown
    recorder = Recorder()
    picked = parse_input("1", session.current_choices())
    assert _act(emulator.client, friend, picked, lambda _: "", recorder.note, lambda r: None)
    assert hook.events[-1]["type"] == "postback"
    assert hook.events[-1]["postback"] == {"data": "gender=f"}
    assert _act(
        emulator.client,
        friend,
        parse_input("2", session.current_choices()),
        input,
        recorder.note,
        lambda r: None,
    )
    assert hook.events[-1]["message"]["text"] == "男性"
    assert not _act(emulator.client, friend, Command("quit"), input, recorder.note, lambda r: None)


def test_session_datetime_picker_prompts(emulator: Emu, hook: Hook, friend: str) -> None:
    choice = Choice(1, "日時", {"type": "datetimepicker", "data": "when", "mode": "time"})
    answers = iter(["10時", "10:30"])
    recorder = Recorder()
    _act(
        emulator.client,
        friend,
        Pick(choice),
        lambda _: next(answers),
        recorder.note,
        lambda r: None,
    )
    assert "HH:mm" in recorder.notes[-1]
    assert hook.events[-1]["postback"] == {"data": "when", "params": {"time": "10:30"}}


def test_chat_command_end_to_end(emulator: Emu, hook: Hook, api: MessagingApi) -> None:
    def echo(body: dict[str, Any]) -> None:
        for event in body["events"]:
            if event["type"] == "message":
                api.reply_message(
                    ReplyMessageRequest(
                        replyToken=event["replyToken"],
                        messages=[TextMessage(text="echo:" + event["message"]["text"])],
                    )
                )
            if event["type"] == "follow":
                api.reply_message(
                    ReplyMessageRequest(
                        replyToken=event["replyToken"],
                        messages=[TextMessage(text="友だち追加ありがとう")],
                    )
                )

    hook.handler = echo
    result = CliRunner().invoke(
        chat_command,
        ["--emulator", emulator.url, "--name", "花子"],
        input="こんにちは\n/unfollow\n/follow\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert "友だち追加ありがとう" in result.output
    assert "echo:こんにちは" in result.output
    assert [e["type"] for e in hook.events] == ["follow", "message", "unfollow", "follow"]
    (user,) = emulator.client.users()
    assert user["name"] == "花子" and user["state"] == "friend"


def test_chat_command_reuses_a_user_id(emulator: Emu, friend: str) -> None:
    result = CliRunner().invoke(
        chat_command, ["--emulator", emulator.url, "--user-id", friend], input="/quit\n"
    )
    assert result.exit_code == 0, result.output
    assert len(emulator.client.users()) == 1


def test_chat_command_without_emulator_fails_cleanly() -> None:
    result = CliRunner().invoke(chat_command, ["--emulator", "http://127.0.0.1:9"], input="/quit\n")
    assert result.exit_code == 1
    assert "cannot reach the emulator" in result.output


def test_emulator_command_needs_credentials() -> None:
    result = CliRunner().invoke(
        emulator_command, [], env={"LINE_CHANNEL_SECRET": "", "LINE_CHANNEL_ACCESS_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert "--channel-secret" in result.output
