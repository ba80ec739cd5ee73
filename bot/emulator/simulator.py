"""The web chat simulator: a phone-like LINE chat page and the JSON endpoints behind it.

Page
    `GET /` redirects to `GET /simulator`, the page (HTML from `templates/simulator.html`, the
    scripts and styles from `static/`, served under `/simulator/static/`; no CDN, no build).
    `GET /favicon.ico` answers the page's icon (`static/favicon.svg`), for browsers that ask
    for it whatever the page's `<link rel="icon">` says.
    It drives the simulated users through the control API of `inspection.py`
    (`POST /_emulator/users`, `.../<id>/follow|unfollow|text|postback`), draws the selected
    user's rich menu from `richmenu_control.py` (`GET /_emulator/users/<id>/richmenu`, a switch
    tap goes to `POST .../richmenu/switch`) and reads:

`GET /_emulator/users/<id>/timeline?since=<seq>`
    What the user did and received after `since`, in order:
    `{"items": [...], "last_seq": int}`. A bot message is
    `{"seq", "from": "bot", "via": "reply"|"push"|"multicast", "billable": bool, "message",
    "at", "at_local", "id"}`; a user action is `{"seq", "from": "user", "type":
    "text"|"postback"|"follow"|"unfollow", "text"?, "data"?, "displayText"?, "params"?,
    "isUnblocked"?, "at", "at_local", "status", "error", "done"}` (`status`/`error`: the bot's
    answer to the webhook, once `done`). `at` is ISO UTC, `at_local` `YYYY-MM-DD HH:MM` in the
    account's time zone. Poll with the last `last_seq`: nothing is missed or repeated.

`GET /_emulator/clock`
    `{"now": ISO UTC, "local": "YYYY-MM-DDTHH:MM", "timezone", "utc_offset": "+09:00",
    "movable": bool}` (`local` in `EmulatorConfig.account_timezone`; `movable` is false for
    the real system clock).

`POST /_emulator/clock`
    `{"advance": "30m" | "1h" | "1d" | "90s" | <seconds>}` or `{"to": "2026-12-01T10:00"}`
    (account time; an ISO time with an offset is taken as given). Moves the clock forward,
    then calls `EmulatorConfig.on_clock_change` (e.g. the bot's timeout sweep) and answers the
    new clock plus `"moved_seconds"` and `"on_clock_change": "ok" | "none" | "failed"` with
    `"on_clock_change_error"` when it raised. 400 for a bad body or a move backwards (the bot's
    state assumes time only moves forward); 409 when the clock cannot move.

`GET /_emulator/bot/friends/<user_id>`
    Proxies the bot's `GET /api/v1/friends/<user_id>` (bearer `bot_admin_token`): the bot's
    200 and 404 bodies pass through (`tags`, `fields`, `conversation`...); 503
    `{"error", "configured": bool}` when `bot_api_url`/`bot_admin_token` are not set or the bot
    cannot be reached; 502 for any other answer.

`GET /_emulator/bot/health`
    Proxies the bot's `GET /healthz` (its 200/503 body passes through, with
    `catalogue_problems` as `file:line:col: message` strings); 503 `{"error", "configured"}`
    when `bot_api_url` is not set or the bot cannot be reached.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import requests
from flask import (
    Blueprint,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue

from bot.clock import Clock
from bot.emulator.context import Emulator, current
from bot.emulator.store import Delivery, UserAction, iso

bp = Blueprint(
    "simulator",
    __name__,
    static_folder="static",
    static_url_path="/simulator/static",
    template_folder="templates",
)

PROXY_TIMEOUT = (2.0, 5.0)  # connect, read (seconds)
MAX_MOVE = timedelta(days=3660)
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@runtime_checkable
class MovableClock(Protocol):
    def now(self) -> datetime: ...

    def advance(self, delta: timedelta) -> datetime: ...


class ClockRequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@bp.errorhandler(ClockRequestError)
def _clock_error(error: ClockRequestError) -> ResponseReturnValue:
    return jsonify({"error": error.message}), error.status


# --- the page ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("simulator.page"))


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    assert bp.static_folder is not None
    response = send_from_directory(bp.static_folder, "favicon.svg", mimetype="image/svg+xml")
    response.cache_control.max_age = 86400
    return response


@bp.get("/_emulator/page-font")
def page_font() -> ResponseReturnValue:
    """The page's fallback Japanese font (`EmulatorConfig.page_font`); 404 when none."""
    font = current().config.page_font
    if font is None or not font.is_file():
        return jsonify({"error": "no page font configured"}), 404
    response = send_file(font, mimetype="font/otf", max_age=86400)
    return response


@bp.get("/simulator")
def page() -> ResponseReturnValue:
    emu = current()
    return render_template(
        "simulator.html",
        account_name=emu.config.bot_display_name,
        basic_id=emu.config.bot_basic_id,
        timezone=emu.config.account_timezone,
        bot_configured=bool(emu.config.bot_api_url),
        page_font=emu.config.page_font is not None,
    )


# --- timeline ---------------------------------------------------------------------------------


def local_minute(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def timeline_item(item: UserAction | Delivery, timezone: str) -> dict[str, Any]:
    if isinstance(item, UserAction):
        out = item.to_json()
    else:
        out = {
            "seq": item.seq,
            "from": "bot",
            "via": item.via,
            "billable": item.via != "reply",
            "message": item.message,
            "at": iso(item.at),
            "id": item.message_id,
        }
    out["at_local"] = local_minute(item.at, timezone)
    return out


@bp.get("/_emulator/users/<user_id>/timeline")
def timeline(user_id: str) -> ResponseReturnValue:
    emu = current()
    if emu.store.get_user(user_id) is None:
        return jsonify({"error": f"no user {user_id}"}), 404
    try:
        since = int(request.args.get("since", "0"))
    except ValueError:
        return jsonify({"error": "'since' must be an integer"}), 400
    items = emu.store.timeline(user_id, since)
    last = items[-1].seq if items else since
    zone = emu.config.account_timezone
    return jsonify({"items": [timeline_item(i, zone) for i in items], "last_seq": last})


# --- the time machine -------------------------------------------------------------------------


def clock_json(clock: Clock, timezone: str) -> dict[str, Any]:
    now = clock.now()
    local = now.astimezone(ZoneInfo(timezone))
    offset = local.strftime("%z")
    return {
        "now": iso(now),
        "local": local.strftime("%Y-%m-%dT%H:%M"),
        "timezone": timezone,
        "utc_offset": f"{offset[:3]}:{offset[3:]}" if offset else "+00:00",
        "movable": isinstance(clock, MovableClock),
    }


def parse_advance(value: Any) -> timedelta:
    """`"30m"`, `"1h"`, `"1d"`, `"90s"` or a number of seconds; must be positive."""
    if isinstance(value, bool):
        raise ClockRequestError("'advance' must be a duration such as \"1h\" or seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := DURATION_RE.match(value)):
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    else:
        raise ClockRequestError(
            '\'advance\' must be a duration such as "30m", "1h", "1d" or seconds'
        )
    if not seconds > 0:
        raise ClockRequestError("the clock only moves forward: 'advance' must be positive")
    if seconds > MAX_MOVE.total_seconds():
        raise ClockRequestError("'advance' is too far (at most 3660 days)")
    return timedelta(seconds=seconds)


def parse_target(value: Any, timezone: str) -> datetime:
    """`"YYYY-MM-DDTHH:MM"` in the account's time zone (or ISO with an explicit offset)."""
    if not isinstance(value, str):
        raise ClockRequestError("'to' must be a date and time such as \"2026-12-01T10:00\"")
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ClockRequestError(
            f"'to' {value!r} is not a date and time such as \"2026-12-01T10:00\""
        ) from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(timezone))
    return at


def move_by(body: dict[str, Any], now: datetime, timezone: str) -> timedelta:
    """How far the request asks to move the clock (validated: forward, not absurdly far)."""
    if ("advance" in body) == ("to" in body):
        raise ClockRequestError("give exactly one of 'advance' (e.g. \"1h\") or 'to'")
    if "advance" in body:
        return parse_advance(body["advance"])
    target = parse_target(body["to"], timezone)
    delta = target - now
    if delta < timedelta():
        local = local_minute(now, timezone)
        raise ClockRequestError(
            f"the clock only moves forward: {body['to']} is before now ({local} {timezone})"
        )
    if delta > MAX_MOVE:
        raise ClockRequestError("'to' is too far ahead (at most 3660 days)")
    return delta


def run_clock_hook(emu: Emulator) -> dict[str, Any]:
    hook = emu.config.on_clock_change
    if hook is None:
        return {"on_clock_change": "none"}
    try:
        hook()
    except Exception as exc:  # report it to the page; the time machine itself worked
        return {
            "on_clock_change": "failed",
            "on_clock_change_error": f"{type(exc).__name__}: {exc}",
        }
    return {"on_clock_change": "ok"}


@bp.get("/_emulator/clock")
def get_clock() -> ResponseReturnValue:
    emu = current()
    return jsonify(clock_json(emu.config.clock, emu.config.account_timezone))


@bp.post("/_emulator/clock")
def move_clock() -> ResponseReturnValue:
    emu = current()
    clock = emu.config.clock
    zone = emu.config.account_timezone
    if not isinstance(clock, MovableClock):
        raise ClockRequestError(
            "this emulator runs on the real clock, which cannot be moved "
            "(the demo and the tests use a movable one)",
            409,
        )
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ClockRequestError("the request body must be a JSON object")
    delta = move_by(body, clock.now(), zone)
    if delta:
        clock.advance(delta)
    out = clock_json(clock, zone)
    out["moved_seconds"] = delta.total_seconds()
    out.update(run_clock_hook(emu))
    return jsonify(out)


# --- the bot, as the side panel sees it -------------------------------------------------------


def _unavailable(message: str, *, configured: bool) -> ResponseReturnValue:
    return jsonify({"error": message, "configured": configured}), 503


def _get_bot(url: str, headers: dict[str, str] | None = None) -> requests.Response | str:
    try:
        return requests.get(url, headers=headers or {}, timeout=PROXY_TIMEOUT)
    except requests.RequestException as exc:
        return f"the bot cannot be reached at {url}: {type(exc).__name__}"


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"error": response.text[:500]}


@bp.get("/_emulator/bot/friends/<user_id>")
def bot_friend(user_id: str) -> ResponseReturnValue:
    config = current().config
    if not config.bot_api_url or not config.bot_admin_token:
        return _unavailable(
            "the bot's admin API is not configured (bot_api_url and bot_admin_token)",
            configured=False,
        )
    url = f"{config.bot_api_url.rstrip('/')}/api/v1/friends/{user_id}"
    answer = _get_bot(url, {"Authorization": f"Bearer {config.bot_admin_token}"})
    if isinstance(answer, str):
        return _unavailable(answer, configured=True)
    if answer.status_code in (200, 404):
        return jsonify(_json_or_text(answer)), answer.status_code
    detail = _json_or_text(answer)
    message = detail.get("error") if isinstance(detail, dict) else None
    return jsonify({"error": f"the bot answered {answer.status_code}: {message or ''}"}), 502


@bp.get("/_emulator/bot/health")
def bot_health() -> ResponseReturnValue:
    config = current().config
    if not config.bot_api_url:
        return _unavailable("the bot's URL is not configured (bot_api_url)", configured=False)
    answer = _get_bot(f"{config.bot_api_url.rstrip('/')}/healthz")
    if isinstance(answer, str):
        return _unavailable(answer, configured=True)
    return jsonify(_json_or_text(answer)), answer.status_code
