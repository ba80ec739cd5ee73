"""The Messaging API paths the bot uses, on one origin (api.line.me and api-data.line.me paths).
Narrowcast, its progress and the upload audiences it targets live in `narrowcast.py`, on this
blueprint (so they get the same authentication, faults, chaos and logging).

Order of checks on a send: bearer token (401) → chaos latency → rate limit per endpoint (429,
when switched on) → scripted fault → chaos fault (5xx, 429) → `X-Line-Retry-Key` format (400) →
JSON body (415/400) → retry key already accepted (409) → OpenAPI schema and LINE's limits (400) →
recipients (400) → monthly quota (429) → accept: deliver or drop per recipient, count billable
messages, remember the retry key, log the accepted request. A chaos `accept_then_drop` then
drops the response (`app.ResponseDropper` closes the connection without an answer).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from bot.emulator import chaos, ids
from bot.emulator.context import DROP_RESPONSE, Emulator, current, line_error
from bot.emulator.ratelimits import RATE_LIMITED
from bot.emulator.store import AcceptedRetryKey, Fault, SimUser, Via, iso
from bot.emulator.validation import ErrorDetail, validate_request

bp = Blueprint("line_messaging_api", __name__)

AUTH_REQUIRED = (
    "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'"
)
AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
RETRY_KEY_ACCEPTED = "The retry key is already accepted"
RETRY_KEY_INVALID = (
    "The value of the X-Line-Retry-Key header is invalid: specify a UUID in hexadecimal format"
)
RETRY_KEY_UNSUPPORTED = "X-Line-Retry-Key is not supported by this API"
INVALID_REPLY_TOKEN = "Invalid reply token"
FAILED_TO_SEND = "Failed to send messages"
MONTHLY_LIMIT = "You have reached your monthly limit."
# Message types a sent message's quoteToken is issued for (the ones a user can quote).
QUOTABLE = {"text", "textV2", "sticker", "image", "video", "audio", "location"}
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


class BodyError(Exception):
    def __init__(self, response: ResponseReturnValue) -> None:
        self.response = response


# --- request plumbing -------------------------------------------------------------------------


@bp.before_request
def _authenticate_and_inject() -> ResponseReturnValue | None:
    g.line_request_id = ids.request_id()
    g.line_fault = None
    g.line_chaos = None
    g.line_drop_response = False
    emu = current()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        return line_error(401, AUTH_REQUIRED)
    expected = emu.config.channel_access_token.encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        return line_error(401, AUTH_FAILED)
    decision = emu.chaos.decide(request.path)
    if decision is not None and decision.latency_ms:
        time.sleep(decision.latency_ms / 1000)
    route = request.url_rule.rule if request.url_rule is not None else None
    if route is not None and "<path:" in route:
        route = None  # the catch-all: each unknown path is its own endpoint
    elif route is not None:
        route = route.replace("<", "{").replace(">", "}")
    if not emu.rate_limits.allow(request.method, request.path, route):
        return line_error(429, RATE_LIMITED)
    fault = emu.store.take_fault(request.path)
    if fault is not None:
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.status is not None:
            if fault.mode == "accept_then_fail":
                g.line_fault = fault
                return None
            return _fault_response(fault)
    if decision is None or decision.kind is None:
        return None
    emu.chaos.record(request.path, decision.kind)
    g.line_chaos = decision.kind
    if decision.kind == "accept_then_drop":
        g.line_drop_response = True
        return None
    response = jsonify(
        {"message": chaos.TOO_MANY_REQUESTS if decision.kind == "429" else chaos.INTERNAL_ERROR}
    )
    response.status_code = 429 if decision.kind == "429" else decision.settings.status_5xx
    if decision.kind == "429" and decision.settings.retry_after is not None:
        response.headers["Retry-After"] = str(decision.settings.retry_after)
    return response


def _fault_response(fault: Fault) -> Response:
    default = (
        "The API rate limit has been exceeded. Try again later."
        if fault.status == 429
        else "An error occurred in the emulator (injected fault)"
    )
    response = jsonify({"message": fault.message or default})
    response.status_code = fault.status or 500
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


@bp.after_request
def _finish(response: Response) -> Response:
    emu = current()
    fault: Fault | None = g.get("line_fault")
    if fault is not None and response.status_code in (200, 202):
        response = _fault_response(fault)
    request_id = g.get("line_request_id") or ids.request_id()
    response.headers["x-line-request-id"] = request_id
    extra: dict[str, Any] = {}
    if g.get("line_chaos"):
        extra["chaos"] = g.line_chaos
    if g.get("line_drop_response"):
        extra["response_dropped"] = True
        request.environ[DROP_RESPONSE] = True
    emu.store.log_request(
        {
            "at": iso(emu.config.clock.now()),
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "status": response.status_code,
            "retry_key": request.headers.get("X-Line-Retry-Key"),
            "request_id": request_id,
            "accepted_request_id": response.headers.get("x-line-accepted-request-id"),
            "body": _logged_body(),
            "response": response.get_json(silent=True),
            **extra,
        }
    )
    return response


def _logged_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw:
        return None
    if (request.mimetype or "").startswith("image/"):
        # An uploaded image (up to 1 MB) would swell the log: keep what it was, not its bytes.
        return f"<{len(raw)} bytes of {request.mimetype}>"
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def json_body() -> Any:
    content_type = request.mimetype or ""
    if content_type != "application/json":
        raise BodyError(
            line_error(415, f"The content type, '{request.content_type or ''}', is not supported")
        )
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except ValueError as exc:
        line = getattr(exc, "lineno", "-")
        column = getattr(exc, "colno", "-")
        raise BodyError(
            line_error(
                400,
                f"The request body could not be parsed as JSON (line: {line}, column: {column})",
            )
        ) from exc


def read_retry_key(supported: bool) -> str | None:
    key = request.headers.get("X-Line-Retry-Key")
    if key is None:
        return None
    if not supported:
        raise BodyError(line_error(400, RETRY_KEY_UNSUPPORTED))
    if not ids.is_uuid(key.strip()):
        raise BodyError(line_error(400, RETRY_KEY_INVALID))
    return key.strip()


def conflict_response(
    emu: Emulator, key: str | None, with_sent_messages: bool
) -> ResponseReturnValue | None:
    """409 if a request with this retry key was already accepted (within its 24 h)."""
    if key is None:
        return None
    accepted = emu.store.accepted_retry_key(
        key, emu.config.clock.now(), emu.config.retry_key_ttl_seconds
    )
    if accepted is None:
        return None
    body: dict[str, Any] = {"message": RETRY_KEY_ACCEPTED}
    if with_sent_messages and accepted.sent_messages:
        body["sentMessages"] = accepted.sent_messages
    response = jsonify(body)
    response.status_code = 409
    response.headers["x-line-accepted-request-id"] = accepted.request_id
    return response


def invalid_request(details: list[ErrorDetail]) -> ResponseReturnValue:
    return line_error(400, f"The request body has {len(details)} error(s)", details)


def _sent_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        sent = {"id": ids.message_id()}
        if message.get("type") in QUOTABLE:
            sent["quoteToken"] = ids.quote_token()
        out.append(sent)
    return out


def drop_reason(user: SimUser | None, via: Via) -> str | None:
    """Why a message for this recipient is accepted but not delivered (None: it is delivered).

    Blocked users and users who never added the account get nothing and cost nothing (LINE
    accepts such sends with 200); a reply reaches whoever caused the event unless they blocked.
    """
    if user is None:
        return "unknown_user"
    if user.state == "blocked":
        return "blocked"
    if user.state == "new" and via != "reply":
        return "not_friend"
    return None


def _route(
    emu: Emulator,
    user_id: str,
    via: Via,
    messages: list[dict[str, Any]],
    sent: list[dict[str, str]],
) -> bool:
    """Deliver to one recipient, or record why not. True when delivered."""
    now = emu.config.clock.now()
    reason = drop_reason(emu.store.get_user(user_id), via)
    if reason:
        emu.store.drop(user_id, via, reason, messages, g.line_request_id, now)
        return False
    emu.store.deliver(user_id, via, messages, sent, g.line_request_id, now)
    return True


def _would_deliver(emu: Emulator, user_id: str) -> bool:
    return drop_reason(emu.store.get_user(user_id), "push") is None


def record_accepted(
    emu: Emulator,
    via: Via,
    key: str | None,
    recipients: list[str],
    messages: list[dict[str, Any]],
    answered: int = 200,
) -> None:
    """Log the accepted send, with what its client will be answered (None: dropped)."""
    fault: Fault | None = g.get("line_fault")
    status: int | None = answered
    if g.get("line_drop_response"):
        status = None
    elif fault is not None:
        status = fault.status
    emu.store.record_accepted(
        request_id=g.line_request_id,
        path=request.path,
        via=via,
        retry_key=key,
        recipients=recipients,
        messages=messages,
        now=emu.config.clock.now(),
        response_status=status,
    )


def remaining_quota(emu: Emulator) -> int | None:
    """Messages left this month under the configured quota (None: no quota)."""
    quota = emu.config.monthly_quota
    if quota is None:
        return None
    return max(0, quota - _used_this_month(emu))


def _over_quota(emu: Emulator, billable: int) -> bool:
    quota = emu.config.monthly_quota
    if quota is None:
        return False
    return _used_this_month(emu) + billable > quota


def _used_this_month(emu: Emulator) -> int:
    return emu.store.usage_in_month(emu.config.clock.now(), emu.config.quota_timezone)


def deliver_to_many(emu: Emulator, via: Via, recipients: list[str], messages: list[Any]) -> int:
    """One one-to-many send (multicast, broadcast, narrowcast) to each recipient; how many
    received it (the others are recorded as dropped, with the reason)."""
    return emu.store.deliver_many(
        recipients,
        via,
        messages,
        lambda user: drop_reason(user, via),
        g.line_request_id,
        emu.config.clock.now(),
        quotable=[message.get("type") in QUOTABLE for message in messages],
    )


def keyed_send_request(
    emu: Emulator,
    schema: str,
    *,
    with_sent_messages: bool,
    rules: Callable[[dict[str, Any]], list[ErrorDetail]] | None = None,
) -> tuple[str | None, dict[str, Any]]:
    """What every send with a retry key checks first: the key, the JSON body, 409 for a key
    already accepted, 400 for a body the spec (or `rules`) rejects. Those answers are raised
    as `BodyError` and returned by the blueprint's handler."""
    key = read_retry_key(supported=True)
    body = json_body()
    conflict = conflict_response(emu, key, with_sent_messages=with_sent_messages)
    if conflict is not None:
        raise BodyError(conflict)
    details = validate_request(schema, body) or (rules(body) if rules is not None else [])
    if details:
        raise BodyError(invalid_request(details))
    return key, body


# --- sending ----------------------------------------------------------------------------------


@bp.errorhandler(BodyError)
def _body_error(error: BodyError) -> ResponseReturnValue:
    return error.response


@bp.post("/v2/bot/message/reply")
def reply_message() -> ResponseReturnValue:
    emu = current()
    read_retry_key(supported=False)
    body = json_body()
    details = validate_request("ReplyMessageRequest", body)
    if details:
        return invalid_request(details)
    now = emu.config.clock.now()
    if emu.config.accept_unknown_reply_tokens:
        emu.store.issue_reply_token(None, now, token=body["replyToken"])  # no-op if known
    token = emu.store.use_reply_token(body["replyToken"], now, emu.config.reply_token_ttl_seconds)
    if token is None:
        return line_error(400, INVALID_REPLY_TOKEN)
    messages: list[dict[str, Any]] = body["messages"]
    sent = _sent_messages(messages)
    _route(emu, token.user_id or "", "reply", messages, sent)
    record_accepted(emu, "reply", None, [token.user_id] if token.user_id else [], messages)
    return jsonify({"sentMessages": sent})


@bp.post("/v2/bot/message/push")
def push_message() -> ResponseReturnValue:
    emu = current()
    key, body = keyed_send_request(emu, "PushMessageRequest", with_sent_messages=True)
    to: str = body["to"]
    if not ids.CHAT_ID_RE.match(to):
        return line_error(
            400, "The property, 'to', in the request body is invalid (line: -, column: -)"
        )
    messages: list[dict[str, Any]] = body["messages"]
    with emu.store.lock:
        conflict = conflict_response(emu, key, with_sent_messages=True)
        if conflict is not None:
            return conflict
        if emu.store.get_user(to) is None:
            # LINE FAQ: a user ID that doesn't exist → 400 "Failed to send messages".
            return line_error(400, FAILED_TO_SEND)
        if _over_quota(emu, 1 if _would_deliver(emu, to) else 0):
            return line_error(429, MONTHLY_LIMIT)
        sent = _sent_messages(messages)
        _route(emu, to, "push", messages, sent)
        if key:
            emu.store.accept_retry_key(
                AcceptedRetryKey(key, g.line_request_id, emu.config.clock.now(), request.path, sent)
            )
        record_accepted(emu, "push", key, [to], messages)
    return jsonify({"sentMessages": sent})


@bp.post("/v2/bot/message/multicast")
def multicast() -> ResponseReturnValue:
    emu = current()
    key, body = keyed_send_request(emu, "MulticastRequest", with_sent_messages=False)
    recipients: list[str] = body["to"]
    bad = [
        ErrorDetail("must be a user ID (U + 32 hex characters)", f"to[{i}]")
        for i, uid in enumerate(recipients)
        if not ids.USER_ID_RE.match(uid)
    ]
    if bad:
        return invalid_request(bad)
    unique = list(dict.fromkeys(recipients))
    messages: list[dict[str, Any]] = body["messages"]
    with emu.store.lock:
        conflict = conflict_response(emu, key, with_sent_messages=False)
        if conflict is not None:
            return conflict
        if emu.config.monthly_quota is not None and _over_quota(
            emu, sum(1 for uid in unique if _would_deliver(emu, uid))
        ):
            return line_error(429, MONTHLY_LIMIT)
        deliver_to_many(emu, "multicast", unique, messages)
        if key:
            emu.store.accept_retry_key(
                AcceptedRetryKey(key, g.line_request_id, emu.config.clock.now(), request.path, None)
            )
        record_accepted(emu, "multicast", key, unique, messages)
    return jsonify({})


@bp.post("/v2/bot/message/broadcast")
def broadcast() -> ResponseReturnValue:
    """Every friend gets the messages (blocked users and users who never added the account are
    not recipients at all); billable per recipient, so the quota check counts the friends."""
    emu = current()
    key, body = keyed_send_request(emu, "BroadcastRequest", with_sent_messages=False)
    messages: list[dict[str, Any]] = body["messages"]
    with emu.store.lock:
        conflict = conflict_response(emu, key, with_sent_messages=False)
        if conflict is not None:
            return conflict
        friends = emu.store.friend_ids()
        if _over_quota(emu, len(friends)):
            return line_error(429, MONTHLY_LIMIT)
        deliver_to_many(emu, "broadcast", friends, messages)
        if key:
            emu.store.accept_retry_key(
                AcceptedRetryKey(key, g.line_request_id, emu.config.clock.now(), request.path, None)
            )
        record_accepted(emu, "broadcast", key, friends, messages)
    return jsonify({})


# --- reading ----------------------------------------------------------------------------------


@bp.get("/v2/bot/profile/<user_id>")
def get_profile(user_id: str) -> ResponseReturnValue:
    user = current().store.get_user(user_id)
    if user is None or user.state == "blocked":
        return line_error(404, "Not found")
    return jsonify(user.profile())


@bp.get("/v2/bot/followers/ids")
def get_followers() -> ResponseReturnValue:
    users = current().store.users()
    return jsonify({"userIds": [u.user_id for u in users if u.state == "friend"]})


@bp.get("/v2/bot/message/quota")
def get_quota() -> ResponseReturnValue:
    quota = current().config.monthly_quota
    if quota is None:
        return jsonify({"type": "none"})
    return jsonify({"type": "limited", "value": quota})


@bp.get("/v2/bot/message/quota/consumption")
def get_quota_consumption() -> ResponseReturnValue:
    emu = current()
    used = emu.store.usage_in_month(emu.config.clock.now(), emu.config.quota_timezone)
    return jsonify({"totalUsage": used})


@bp.get("/v2/bot/info")
def get_bot_info() -> ResponseReturnValue:
    config = current().config
    return jsonify(
        {
            "userId": config.destination,
            "basicId": config.bot_basic_id,
            "displayName": config.bot_display_name,
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }
    )


@bp.route("/v2/<path:rest>", methods=ALL_METHODS)
@bp.route("/v3/<path:rest>", methods=ALL_METHODS)
def not_emulated(rest: str) -> ResponseReturnValue:
    return line_error(404, "Not found")
