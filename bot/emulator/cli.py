"""`stepline emulator` and `stepline chat` (registered by the main CLI)."""

from __future__ import annotations

import logging
import threading

import click
from rich.console import Console

from bot.emulator.app import create_emulator_app
from bot.emulator.chat import run_chat
from bot.emulator.config import EmulatorConfig
from bot.http_server import ServerThread

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
@click.option("--quiet", is_flag=True, help="Do not log every request.")
def emulator_command(
    host: str,
    port: int,
    webhook_url: str,
    channel_secret: str,
    channel_access_token: str,
    reply_token_ttl: float,
    accept_unknown_reply_tokens: bool,
    quiet: bool,
) -> None:
    """Serve the LINE Platform emulator until Ctrl-C."""
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
    )
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    console = Console()
    server = ServerThread(create_emulator_app(config), host=host, port=port).start()
    console.print(f"LINE emulator on [bold]{server.url}[/] (LINE_API_BASE_URL={server.url})")
    console.print(f"webhooks → {webhook_url or '(none yet)'}; control API: {server.url}/_emulator/")
    console.print("Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


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
    run_chat(emulator_url, name, user_id)
