"""`POST /callback`: LINE's webhook. Verify → read each event → store them in one write →
answer 200 → hand them to this process's event pool (`bot.services.event_pool`).

No LINE call and no flow work happens inside the request: LINE gives up after 2 seconds and
asks bots to process asynchronously. Whatever a signed body carries, each event is stored
(a bad one as `ignored`, with why); only a body that is not JSON or has no `events` list is
refused (400), and only a database that cannot take the write answers 500 (LINE redelivers).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.line.signature import is_valid
from bot.line.webhook_events import read_event
from bot.runtime import Runtime
from bot.services.event_pool import EventPool
from bot.services.inbox import store_events

log = logging.getLogger(__name__)
blueprint = Blueprint("webhook", __name__)
MAX_EVENTS = 1000  # LINE sends a handful per body; more is not LINE


def runtime() -> Runtime:
    return current_app.extensions["stepline"]


def event_pool() -> EventPool:
    return current_app.extensions["stepline.events"]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


@blueprint.post("/callback")
def callback() -> Any:
    started = time.perf_counter()
    rt = runtime()
    body = request.get_data(cache=False)
    if not is_valid(rt.settings.channel_secret, body, request.headers.get("X-Line-Signature")):
        log.warning("webhook with a missing or wrong signature rejected (%d bytes)", len(body))
        return _error(400, "invalid or missing X-Line-Signature")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error(400, "body is not JSON (or is nested too deep)")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return _error(400, "body needs an `events` list")
    if len(events) > MAX_EVENTS:
        return _error(400, f"more than {MAX_EVENTS} events in one body")
    pool = event_pool()
    stored = store_events(rt, [read_event(event) for event in events], pool.owner)
    pool.submit(stored.friends)
    elapsed = time.perf_counter() - started
    log.info(
        "webhook: %d event(s): %d stored, %d ignored, %d duplicate(s) in %.1f ms",
        len(events),
        stored.received,
        stored.ignored,
        stored.duplicates,
        elapsed * 1000,
    )
    rt.metrics.observe_webhook(elapsed)
    return jsonify({})
