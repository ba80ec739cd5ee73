"""The per-app emulator objects, reachable from views through `current_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from bot.emulator.chaos import Chaos
from bot.emulator.config import EmulatorConfig
from bot.emulator.ratelimits import RateLimiter
from bot.emulator.store import EmulatorStore
from bot.emulator.validation import ErrorDetail
from bot.emulator.webhooks import WebhookDispatcher

EXTENSION_KEY = "line_emulator"
# Set in the WSGI environ by a view whose response must be dropped (chaos accept_then_drop).
DROP_RESPONSE = "stepline.emulator.drop_response"


@dataclass
class Emulator:
    config: EmulatorConfig
    store: EmulatorStore
    webhooks: WebhookDispatcher
    chaos: Chaos
    rate_limits: RateLimiter


def current() -> Emulator:
    return cast(Emulator, current_app.extensions[EXTENSION_KEY])


def line_error(
    status: int,
    message: str,
    details: list[ErrorDetail] | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    """LINE's error body: `{"message", "details"?: [{"message", "property"}]}`."""
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = [detail.to_json() for detail in details]
    body.update(extra)
    return jsonify(body), status
