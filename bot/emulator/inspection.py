"""The control and inspection API under `/_emulator/` (JSON; no auth: a local test tool).

Simulated users act here (follow, unfollow, text, postback): each action becomes a webhook
event, signed and posted to the bot synchronously; the answer carries the bot's HTTP status.
Tests and the chat clients read what users received, the API request log, billable counts,
accepted sends and per-(user, message) counts; they switch scripted faults, probabilistic chaos
and LINE's rate limits on and off.
What users did (text, postbacks with their `displayText`, follow, block) is logged too, before
its webhook goes out, for the simulator's timeline (`simulator.py`); a postback may name what
was tapped (`"label"`, `"origin": "richmenu" | "message"`), which the timeline keeps and the
webhook never carries (`tap_fields`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from bot.emulator import ids, webhooks
from bot.emulator.chaos import ChaosError, ChaosSettings
from bot.emulator.context import Emulator, current
from bot.emulator.ratelimits import RateLimitError, settings_from_json
from bot.emulator.store import VIAS, StoreError
from bot.emulator.webhooks import WebhookResult

bp = Blueprint("line_emulator_control", __name__, url_prefix="/_emulator")

FAULT_MODES = ("fail", "accept_then_fail")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@bp.errorhandler(BadRequest)
def _bad_request(error: BadRequest) -> ResponseReturnValue:
    return jsonify({"error": error.message}), error.status


@bp.errorhandler(StoreError)
def _store_error(error: StoreError) -> ResponseReturnValue:
    return jsonify({"error": error.message}), error.status


def request_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def string_field(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"'{key}' must be a non-empty string")
    return value


TAP_ORIGINS = ("richmenu", "message")
MAX_TAP_LABEL = 100


def tap_fields(
    emu: Emulator, user_id: str, body: dict[str, Any], data: str, alias_id: str | None = None
) -> dict[str, str]:
    """What the user tapped, for the simulator's timeline (never sent to the bot): `label`
    (the button's or rich menu area's) and `origin` (`"richmenu"` | `"message"`) as the client
    says, else the label of the area of the user's rich menu whose action posts `data` (a
    switch to `alias_id`). The page then shows "(メニュー「ポイント」をタップ)", not the data."""
    label = string_field(body, "label", required=False) or None
    origin = body.get("origin")
    if origin is not None and origin not in TAP_ORIGINS:
        raise BadRequest('\'origin\' must be "richmenu" or "message"')
    if label is None and origin != "message":
        with emu.store.rich_menus() as menus:
            shown = menus.shown(user_id)
        found = shown.menu.area_label(data, alias_id) if shown is not None else None
        if found is not None:
            label, origin = found, "richmenu"
    out: dict[str, str] = {}
    if label is not None:
        out["label"] = label[:MAX_TAP_LABEL]
    if origin is not None:
        out["origin"] = origin
    return out


def _result(result: WebhookResult, event: dict[str, Any] | None = None) -> ResponseReturnValue:
    out: dict[str, Any] = {"status": result.status, "error": result.error}
    if event is not None:
        out["event"] = event
    else:
        out["events"] = result.body["events"]
    return jsonify(out)


def _send_one(
    emu: Emulator, event: dict[str, Any], action_seq: int | None = None
) -> ResponseReturnValue:
    """Register the event's reply token (if any) for its user, then post it to the bot.
    `action_seq` (the user's logged action) gets the bot's answer recorded on it."""
    register_reply_token(emu, event)
    result = emu.webhooks.dispatch([event])
    if action_seq is not None:
        emu.store.finish_action(action_seq, result.status, result.error)
    return _result(result, event)


def register_reply_token(emu: Emulator, event: dict[str, Any]) -> None:
    """Make the event's reply token valid for its source user (a no-op for a known token,
    so a used token stays used when its event is redelivered)."""
    token = event.get("replyToken")
    if not isinstance(token, str) or not token:
        return
    source = event.get("source")
    user_id = source.get("userId") if isinstance(source, dict) else None
    event_id = event.get("webhookEventId")
    emu.store.issue_reply_token(
        user_id if isinstance(user_id, str) else None,
        emu.config.clock.now(),
        webhook_event_id=event_id if isinstance(event_id, str) else None,
        token=token,
    )


# --- users ------------------------------------------------------------------------------------


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    emu = current()
    body = request_body()
    name = string_field(body, "name")
    assert name is not None
    user_id = string_field(body, "user_id", required=False)
    if user_id is not None and not ids.is_user_id(user_id):
        raise BadRequest("'user_id' must be U followed by 32 lowercase hex characters")
    picture_url = string_field(body, "picture_url", required=False)
    language = string_field(body, "language", required=False) if "language" in body else "ja"
    user = emu.store.add_user(
        name, emu.config.clock.now(), user_id=user_id, picture_url=picture_url, language=language
    )
    return jsonify(user.to_json()), 201


@bp.post("/users/bulk")
def create_friends() -> ResponseReturnValue:
    """`{"user_ids": [...]}`: users who are already friends, without webhooks (for benchmarks
    and tests that seed the bot's database directly)."""
    emu = current()
    user_ids = request_body().get("user_ids")
    if not isinstance(user_ids, list) or not user_ids:
        raise BadRequest("'user_ids' must be a non-empty list of user ids")
    bad = [
        i for i, uid in enumerate(user_ids) if not isinstance(uid, str) or not ids.is_user_id(uid)
    ]
    if bad:
        raise BadRequest(f"user_ids[{bad[0]}] must be U followed by 32 lowercase hex characters")
    created = emu.store.add_friends(user_ids, emu.config.clock.now())
    return jsonify({"created": created}), 201


@bp.get("/users")
def list_users() -> ResponseReturnValue:
    return jsonify({"users": [u.to_json() for u in current().store.users()]})


@bp.get("/users/<user_id>")
def get_user(user_id: str) -> ResponseReturnValue:
    return jsonify(current().store.require_user(user_id).to_json())


@bp.post("/users/<user_id>/follow")
def follow(user_id: str) -> ResponseReturnValue:
    emu = current()
    now = emu.config.clock.now()
    is_unblocked = emu.store.follow(user_id, now)
    seq = emu.store.record_action(user_id, "follow", now, {"isUnblocked": is_unblocked})
    event = webhooks.follow_event(user_id, now, ids.reply_token(), is_unblocked)
    return _send_one(emu, event, seq)


@bp.post("/users/<user_id>/unfollow")
def unfollow(user_id: str) -> ResponseReturnValue:
    emu = current()
    now = emu.config.clock.now()
    emu.store.unfollow(user_id, now)
    seq = emu.store.record_action(user_id, "unfollow", now)
    return _send_one(emu, webhooks.unfollow_event(user_id, now), seq)


def active_user(emu: Emulator, user_id: str) -> None:
    user = emu.store.require_user(user_id)
    if user.state == "blocked":
        raise BadRequest(f"user {user_id} has blocked the account; follow again first", 409)


@bp.post("/users/<user_id>/text")
def send_text(user_id: str) -> ResponseReturnValue:
    emu = current()
    active_user(emu, user_id)
    text = string_field(request_body(), "text")
    assert text is not None
    now = emu.config.clock.now()
    seq = emu.store.record_action(user_id, "text", now, {"text": text})
    return _send_one(emu, webhooks.text_message_event(user_id, now, ids.reply_token(), text), seq)


@bp.post("/users/<user_id>/postback")
def send_postback(user_id: str) -> ResponseReturnValue:
    emu = current()
    active_user(emu, user_id)
    body = request_body()
    data = body.get("data")
    if not isinstance(data, str):
        raise BadRequest("'data' must be a string")
    display_text = string_field(body, "displayText", required=False)
    params = body.get("params")
    if params is not None:
        if not isinstance(params, dict):
            raise BadRequest("'params' must be an object")
        problem = webhooks.check_postback_params(params)
        if problem:
            raise BadRequest(problem)
    tapped = tap_fields(emu, user_id, body, data)
    now = emu.config.clock.now()
    # LINE shows `displayText` as the user's message; it is not part of the webhook, nor is
    # what was tapped (`label`, `origin`: for the simulator's timeline).
    details: dict[str, Any] = {
        "data": data,
        "displayText": display_text,
        "params": params,
        **tapped,
    }
    seq = emu.store.record_action(user_id, "postback", now, details)
    event = webhooks.postback_event(user_id, now, ids.reply_token(), data, params)
    return _send_one(emu, event, seq)


@bp.get("/users/<user_id>/messages")
def user_messages(user_id: str) -> ResponseReturnValue:
    emu = current()
    emu.store.require_user(user_id)
    try:
        since = int(request.args.get("since", "0"))
    except ValueError as exc:
        raise BadRequest("'since' must be an integer") from exc
    deliveries = emu.store.deliveries_for(user_id, since)
    last = deliveries[-1].seq if deliveries else since
    return jsonify({"messages": [d.to_json() for d in deliveries], "last_seq": last})


# --- raw webhooks -----------------------------------------------------------------------------


@bp.post("/webhook")
def post_events() -> ResponseReturnValue:
    """Post already-built events as they are (signed); `redeliver: true` flags them as
    redeliveries. Reply tokens in them become valid for the event's source user."""
    emu = current()
    body = request_body()
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadRequest("'events' must be an array of event objects")
    if body.get("redeliver"):
        events = [webhooks.as_redelivery(e) for e in events]
    for event in events:
        register_reply_token(emu, event)
    return _result(emu.webhooks.dispatch(events))


@bp.post("/redeliver")
def redeliver() -> ResponseReturnValue:
    emu = current()
    event_id = string_field(request_body(), "webhookEventId")
    assert event_id is not None
    event = emu.store.event(event_id)
    if event is None:
        raise BadRequest(f"no event {event_id} was sent", 404)
    return _send_one(emu, webhooks.as_redelivery(event))


@bp.get("/webhooks")
def webhook_log() -> ResponseReturnValue:
    return jsonify({"webhooks": current().store.webhooks()})


# --- inspection and control -------------------------------------------------------------------


@bp.get("/requests")
def request_log() -> ResponseReturnValue:
    """Every API request, oldest first; `?path=/v2/bot/richmenu/bulk/link&method=POST` keeps
    only those (the body is logged, so a bulk request's `userIds` can be counted)."""
    path = request.args.get("path") or None
    method = (request.args.get("method") or "").upper() or None
    found = [
        entry
        for entry in current().store.requests()
        if (path is None or entry.get("path") == path)
        and (method is None or entry.get("method") == method)
    ]
    return jsonify({"requests": found})


@bp.get("/dropped")
def dropped() -> ResponseReturnValue:
    return jsonify({"dropped": [d.to_json() for d in current().store.dropped()]})


def _flag(name: str, default: bool) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"'{name}' must be true or false")


def _vias() -> set[str] | None:
    value = request.args.get("via")
    if not value:
        return None
    vias = {v.strip() for v in value.split(",") if v.strip()}
    if vias - set(VIAS):
        raise BadRequest(f"'via' must be a comma-separated list of {', '.join(VIAS)}")
    return vias


@bp.get("/stats")
def stats() -> ResponseReturnValue:
    """Totals; per user (`users`, `billable_by_user`) unless `?per_user=false`."""
    return jsonify(current().store.stats(per_user=_flag("per_user", True)))


@bp.get("/accepted")
def accepted() -> ResponseReturnValue:
    """Sends LINE accepted, oldest first: `?path=/v2/bot/message/push&user_id=U...&since=seq`."""
    try:
        since = int(request.args.get("since", "0"))
    except ValueError as exc:
        raise BadRequest("'since' must be an integer") from exc
    found = current().store.accepted(
        path=request.args.get("path") or None,
        user_id=request.args.get("user_id") or None,
        since=since,
    )
    last = found[-1].seq if found else since
    return jsonify({"accepted": [a.to_json() for a in found], "last_seq": last})


@bp.get("/accepted/counts")
def accepted_counts() -> ResponseReturnValue:
    """`{user_id: {message text or label: n}}` over accepted sends, whether or not they
    reached the user (`?path=`, `?via=push,multicast,broadcast,narrowcast`)."""
    store = current().store
    return jsonify(store.accepted_counts(path=request.args.get("path") or None, vias=_vias()))


@bp.get("/deliveries/counts")
def delivery_counts() -> ResponseReturnValue:
    """`{user_id: {message text or label: n}}`: how many times each message reached each user
    (`?via=push,multicast` to leave replies out, `?user_id=`)."""
    store = current().store
    return jsonify(store.delivery_counts(vias=_vias(), user_id=request.args.get("user_id") or None))


@bp.get("/audiences")
def audiences() -> ResponseReturnValue:
    """Audiences uploaded through `POST /v2/bot/audienceGroup/upload`, with their user ids."""
    return jsonify(
        {
            "audiences": [
                {**group.to_json(), "user_ids": list(group.members)}
                for group in current().store.audiences()
            ]
        }
    )


@bp.get("/narrowcasts")
def narrowcasts() -> ResponseReturnValue:
    """Accepted narrowcasts, oldest first: `requestId`, the progress LINE would answer, and
    the users they went to (`recipients`)."""
    return jsonify(
        {
            "narrowcasts": [
                {"requestId": p.request_id, **p.to_json(), "recipients": list(p.recipients)}
                for p in current().store.narrowcasts()
            ]
        }
    )


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Forget what happened; the chaos and rate-limit settings stay (counters restart, the
    chaos RNG is re-seeded, every rate-limit bucket is full again)."""
    emu = current()
    emu.store.reset()
    emu.chaos.reset()
    emu.rate_limits.reset()
    return jsonify({"ok": True})


# --- chaos and rate limits --------------------------------------------------------------------


@bp.get("/chaos")
def get_chaos() -> ResponseReturnValue:
    return jsonify(current().chaos.to_json())


@bp.put("/chaos")
def put_chaos() -> ResponseReturnValue:
    """`{"rates": {"5xx": 0.05, "429": 0.02, "accept_then_drop": 0.05}, "retry_after": 1,
    "latency_ms": {"min": 0, "max": 20}, "paths": [...] | "*", "seed": 42}`; counters restart."""
    try:
        settings = ChaosSettings.from_json(request_body())
    except ChaosError as exc:
        raise BadRequest(str(exc)) from exc
    emu = current()
    emu.chaos.configure(settings)
    return jsonify(emu.chaos.to_json())


@bp.delete("/chaos")
def delete_chaos() -> ResponseReturnValue:
    emu = current()
    final = emu.chaos.to_json()
    emu.chaos.configure(None)
    return jsonify({**emu.chaos.to_json(), "final_counters": final["counters"]})


@bp.get("/rate_limits")
def get_rate_limits() -> ResponseReturnValue:
    return jsonify(current().rate_limits.to_json())


@bp.put("/rate_limits")
def put_rate_limits() -> ResponseReturnValue:
    """`{"enabled": true, "limits": {"POST /v2/bot/message/push": "20/s", ...} | null}`:
    LINE's documented table with these overrides; every bucket starts full."""
    try:
        enabled, limits = settings_from_json(request_body())
    except RateLimitError as exc:
        raise BadRequest(str(exc)) from exc
    emu = current()
    emu.rate_limits.configure(enabled, limits)
    return jsonify(emu.rate_limits.to_json())


@bp.delete("/rate_limits")
def delete_rate_limits() -> ResponseReturnValue:
    emu = current()
    emu.rate_limits.configure(False)
    return jsonify(emu.rate_limits.to_json())


def _config_json(emu: Emulator) -> dict[str, Any]:
    return {
        "webhook_url": emu.store.webhook_url,
        "bot_user_id": emu.config.destination,
        "reply_token_ttl_seconds": emu.config.reply_token_ttl_seconds,
        "monthly_quota": emu.config.monthly_quota,
        "now": emu.config.clock.now().isoformat(),
    }


@bp.get("/config")
def get_config() -> ResponseReturnValue:
    return jsonify(_config_json(current()))


@bp.put("/config")
def put_config() -> ResponseReturnValue:
    emu = current()
    body = request_body()
    if "webhook_url" in body:
        url = body["webhook_url"]
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise BadRequest("'webhook_url' must be an http(s) URL or null")
        emu.store.webhook_url = url
    return jsonify(_config_json(emu))


@bp.get("/faults")
def list_faults() -> ResponseReturnValue:
    return jsonify({"faults": [f.to_json() for f in current().store.faults()]})


@bp.post("/faults")
def add_fault() -> ResponseReturnValue:
    """Script failures: `{"path": "/v2/bot/message/push" | "*", "status": 500 | 429 | null,
    "times": 1, "mode": "fail" | "accept_then_fail", "latency_ms": 0, "retry_after": null,
    "message": null}`."""
    body = request_body()
    path = body.get("path", "*")
    status = body.get("status", 500)
    times = body.get("times", 1)
    mode = body.get("mode", "fail")
    latency = body.get("latency_ms", 0)
    retry_after = body.get("retry_after")
    message = body.get("message")
    if not isinstance(path, str) or not (path == "*" or path.startswith("/")):
        raise BadRequest("'path' must be an API path such as /v2/bot/message/push, or *")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise BadRequest("'status' must be an HTTP error status (400-599) or null")
    if not isinstance(times, int) or times < 1:
        raise BadRequest("'times' must be a positive integer")
    if mode not in FAULT_MODES:
        raise BadRequest(f"'mode' must be one of {', '.join(FAULT_MODES)}")
    if not isinstance(latency, int) or latency < 0:
        raise BadRequest("'latency_ms' must be a non-negative integer")
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise BadRequest("'retry_after' must be a non-negative integer")
    if message is not None and not isinstance(message, str):
        raise BadRequest("'message' must be a string")
    fault = current().store.add_fault(
        path=path,
        status=status,
        times=times,
        mode=mode,
        latency_ms=latency,
        retry_after=retry_after,
        message=message,
    )
    return jsonify(fault.to_json()), 201


@bp.delete("/faults")
def clear_faults() -> ResponseReturnValue:
    current().store.clear_faults()
    return jsonify({"ok": True})
