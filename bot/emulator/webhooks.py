"""Webhook events as `webhook.yml` defines them, signed and posted to the bot.

The builders are pure (a clock reading and ids in, a dict out); `WebhookDispatcher` does the
I/O: it serialises the body once, signs exactly those bytes with the channel secret
(`X-Line-Signature`), POSTs them synchronously and records the outcome in the store.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from bot.clock import Clock
from bot.emulator import ids
from bot.emulator.store import EmulatorStore, iso

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{2}:\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
PARAM_FORMATS = {"date": DATE_RE, "time": TIME_RE, "datetime": DATETIME_RE}


def timestamp_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def base_event(event_type: str, user_id: str, now: datetime) -> dict[str, Any]:
    """The properties every event from a one-to-one chat carries."""
    return {
        "type": event_type,
        "mode": "active",
        "timestamp": timestamp_ms(now),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": ids.ulid(now),
        "deliveryContext": {"isRedelivery": False},
    }


def follow_event(
    user_id: str, now: datetime, reply_token: str, is_unblocked: bool
) -> dict[str, Any]:
    event = base_event("follow", user_id, now)
    event["replyToken"] = reply_token
    event["follow"] = {"isUnblocked": is_unblocked}
    return event


def unfollow_event(user_id: str, now: datetime) -> dict[str, Any]:
    return base_event("unfollow", user_id, now)


def text_message_event(user_id: str, now: datetime, reply_token: str, text: str) -> dict[str, Any]:
    event = base_event("message", user_id, now)
    event["replyToken"] = reply_token
    event["message"] = {
        "type": "text",
        "id": ids.message_id(),
        "quoteToken": ids.quote_token(),
        "text": text,
    }
    return event


def check_postback_params(params: dict[str, Any]) -> str | None:
    """Why datetime-picker params are malformed (`date` YYYY-MM-DD, `time` HH:mm,
    `datetime` YYYY-MM-DDTHH:mm; other keys must be strings), or None if they are fine."""
    for key, value in params.items():
        if not isinstance(value, str):
            return f"params.{key} must be a string"
        pattern = PARAM_FORMATS.get(key)
        if pattern and not pattern.match(value):
            return f"params.{key} {value!r} is not in LINE's {key} format"
    return None


def postback_event(
    user_id: str,
    now: datetime,
    reply_token: str,
    data: str,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A postback. A `displayText` is shown in the chat by the LINE app but is not part of
    the webhook, so it does not appear here."""
    event = base_event("postback", user_id, now)
    event["replyToken"] = reply_token
    postback: dict[str, Any] = {"data": data}
    if params:
        postback["params"] = dict(params)
    event["postback"] = postback
    return event


def callback_body(destination: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"destination": destination, "events": events}


def as_redelivery(event: dict[str, Any]) -> dict[str, Any]:
    """The same event (same `webhookEventId`) flagged `deliveryContext.isRedelivery: true`."""
    out = copy.deepcopy(event)
    context = out.get("deliveryContext")
    out["deliveryContext"] = {
        **(context if isinstance(context, dict) else {}),
        "isRedelivery": True,
    }
    return out


def line_signature(channel_secret: str, body: bytes) -> str:
    """`X-Line-Signature` as LINE computes it: base64(HMAC-SHA256(channel secret, body)).

    Written here rather than shared with the bot's `bot.line.signature`: the emulator stands
    in for LINE, so the bot's check is tested against a second, independent implementation
    (and the emulator stays a leaf that imports nothing of the product)."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class WebhookResult:
    status: int | None
    error: str | None
    body: dict[str, Any]
    response_text: str | None = None


class WebhookDispatcher:
    """Signs and posts webhook bodies to the store's current webhook URL."""

    def __init__(
        self,
        store: EmulatorStore,
        clock: Clock,
        channel_secret: str,
        destination: str,
        timeout_seconds: float = 10,
    ) -> None:
        self.store = store
        self.clock = clock
        self.channel_secret = channel_secret
        self.destination = destination
        self.timeout_seconds = timeout_seconds

    def dispatch(self, events: list[dict[str, Any]]) -> WebhookResult:
        body = callback_body(self.destination, events)
        for event in events:
            self.store.remember_event(event)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        url = self.store.webhook_url
        status: int | None = None
        error: str | None = None
        text: str | None = None
        if not url:
            error = "no webhook URL is configured (PUT /_emulator/config)"
        else:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Line-Signature": line_signature(self.channel_secret, raw),
                "User-Agent": "LineBotWebhook/2.0",
            }
            try:
                response = requests.post(
                    url, data=raw, headers=headers, timeout=self.timeout_seconds
                )
                status = response.status_code
                text = response.text[:2000]
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
        self.store.log_webhook(
            {
                "at": iso(self.clock.now()),
                "url": url,
                "status": status,
                "error": error,
                "body": body,
            }
        )
        return WebhookResult(status=status, error=error, body=body, response_text=text)
