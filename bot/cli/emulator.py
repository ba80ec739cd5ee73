"""`stepline emulator` and `stepline chat` (loaded by the main CLI)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import click

from bot.cli.common import make_console, serve_or_exit, stop_on_signals

DEFAULT_PORT = 8001
DEFAULT_EMULATOR_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/callback"


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0 = any free one)."
)
@click.option(
    "--webhook-url",
    default=DEFAULT_WEBHOOK_URL,
    show_default=True,
    envvar="STEPLINE_WEBHOOK_URL",
    help="The bot's /callback, where signed webhooks go (changeable via PUT /_emulator/config).",
)
@click.option(
    "--channel-secret",
    envvar="LINE_CHANNEL_SECRET",
    default="",
    help="Signs webhooks [env LINE_CHANNEL_SECRET].",
)
@click.option(
    "--channel-access-token",
    envvar="LINE_CHANNEL_ACCESS_TOKEN",
    default="",
    help="The bearer token the API accepts [env LINE_CHANNEL_ACCESS_TOKEN].",
)
@click.option(
    "--reply-token-ttl",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds a reply token stays usable.",
)
@click.option(
    "--accept-unknown-reply-tokens",
    is_flag=True,
    help="Accept reply tokens the emulator did not issue (each once); for benchmarks.",
)
@click.option(
    "--chaos",
    "chaos_json",
    default=None,
    metavar="JSON|@FILE",
    help='Inject faults from the start, as PUT /_emulator/chaos: e.g. \'{"rates": {"5xx": 0.05, '
    '"accept_then_drop": 0.05, "429": 0.02}, "retry_after": 1, "seed": 42}\'.',
)
@click.option(
    "--rate-limits",
    "rate_limits",
    default="off",
    show_default=True,
    metavar="default|off|JSON",
    help="LINE's documented per-endpoint rate limits: 'default' switches them on, a JSON "
    "object overrides some (e.g. '{\"POST /v2/bot/message/push\": \"20/s\"}'), 'off' leaves "
    "them off (switchable later: PUT /_emulator/rate_limits).",
)
@click.option("--quiet", is_flag=True, help="Do not log every request.")
def emulator_command(
    host: str,
    port: int,
    webhook_url: str,
    channel_secret: str,
    channel_access_token: str,
    reply_token_ttl: float,
    accept_unknown_reply_tokens: bool,
    chaos_json: str | None,
    rate_limits: str,
    quiet: bool,
) -> None:
    """Serve the LINE Platform emulator until Ctrl-C."""
    from rich.markup import escape

    from bot.emulator.app import create_emulator_app
    from bot.emulator.config import EmulatorConfig
    from bot.richmenus.render import bundled_font_path

    if not channel_secret or not channel_access_token:
        raise click.UsageError(
            "set --channel-secret and --channel-access-token "
            "(or LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN)"
        )
    config = EmulatorConfig(
        channel_secret=channel_secret,
        channel_access_token=channel_access_token,
        webhook_url=webhook_url or None,
        reply_token_ttl_seconds=reply_token_ttl,
        accept_unknown_reply_tokens=accept_unknown_reply_tokens,
        chaos=parse_chaos_option(chaos_json),
        rate_limits=parse_rate_limits_option(rate_limits),
        page_font=bundled_font_path(),
    )
    # One line per request (`bot.emulator.http_server`'s access log) unless --quiet.
    access_log = logging.getLogger("stepline.http")
    access_log.setLevel(logging.WARNING if quiet else logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(message)s")
    console = make_console()
    server = serve_or_exit(create_emulator_app(config), host=host, port=port, option="--port")
    console.print(f"LINE emulator on [bold]{server.url}[/] (LINE_API_BASE_URL={server.url})")
    console.print(f"webhooks → {webhook_url or '(none yet)'}; control API: {server.url}/_emulator/")
    if config.chaos:
        console.print(f"chaos: {escape(json.dumps(config.chaos, ensure_ascii=False))}")
    if config.rate_limits and config.rate_limits.get("enabled"):
        console.print("rate limits: LINE's documented limits per endpoint", end="")
        overrides = config.rate_limits.get("limits")
        console.print(f", overridden: {escape(json.dumps(overrides))}" if overrides else "")
    console.print("Ctrl-C to stop.")
    stop_on_signals()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _json_or_file_option(value: str, option: str) -> Any:
    """`JSON` or `@FILE` of JSON. Not `bot.cli.common.json_option`: that one reads no file,
    takes a bare word as a segment's name, and words its error for conditions."""
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=option) from exc


def parse_chaos_option(value: str | None) -> dict[str, Any] | None:
    """`--chaos JSON|@FILE` → the chaos settings (validated), or None."""
    from bot.emulator.chaos import ChaosError, ChaosSettings

    if not value:
        return None
    body = _json_or_file_option(value, "--chaos")
    try:
        ChaosSettings.from_json(body)
    except ChaosError as exc:
        raise click.BadParameter(str(exc), param_hint="--chaos") from exc
    return dict(body)


def parse_rate_limits_option(value: str) -> dict[str, Any] | None:
    """`--rate-limits default|off|JSON` → the rate-limit settings, or None (off)."""
    from bot.emulator.ratelimits import RateLimitError, settings_from_json

    if value == "off":
        return None
    if value == "default":
        return {"enabled": True, "limits": None}
    limits = _json_or_file_option(value, "--rate-limits")
    settings = {"enabled": True, "limits": limits}
    try:
        settings_from_json(settings)
    except RateLimitError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate-limits") from exc
    return settings


@click.command("chat")
@click.option(
    "--emulator",
    "emulator_url",
    default=DEFAULT_EMULATOR_URL,
    show_default=True,
    envvar="STEPLINE_EMULATOR_URL",
    help="Base URL of a running emulator.",
)
@click.option("--name", default="花子", show_default=True, help="Display name of the new user.")
@click.option("--user-id", default=None, help="Continue as this user (created if unknown).")
def chat_command(emulator_url: str, name: str, user_id: str | None) -> None:
    """Chat with the bot in the terminal as a simulated LINE user."""
    from bot.emulator.chat import run_chat

    run_chat(emulator_url, name, user_id)
