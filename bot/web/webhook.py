"""`POST /callback`: LINE's webhook. Parse → verify → process each event → answer."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.line.signature import is_valid
from bot.runtime import Runtime
from bot.services.webhook_events import process_event

log = logging.getLogger(__name__)
blueprint = Blueprint("webhook", __name__)


def runtime() -> Runtime:
    return current_app.extensions["stepline"]


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
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body is not JSON")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _error(400, "body needs an `events` list of objects")
    results = [process_event(rt, event) for event in events]
    failed = [r.webhook_event_id for r in results if r.status == "failed"]
    log.info(
        "webhook: %d event(s) %s in %.1f ms",
        len(events),
        ",".join(r.status for r in results) or "-",
        (time.perf_counter() - started) * 1000,
    )
    rt.metrics.observe_webhook(time.perf_counter() - started)
    if failed:
        # Not acknowledged: LINE redelivers (with webhook redelivery on), and a redelivered
        # event that failed is processed again; the ones that succeeded count as duplicates.
        return _error(500, f"{len(failed)} event(s) failed and are kept for redelivery")
    return jsonify({})
