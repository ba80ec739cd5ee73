"""`create_emulator_app(config)`: the LINE Platform emulator as a Flask app."""

from __future__ import annotations

from flask import Flask

from bot.emulator import inspection, messaging, simulator
from bot.emulator.config import EmulatorConfig
from bot.emulator.context import EXTENSION_KEY, Emulator
from bot.emulator.store import EmulatorStore
from bot.emulator.validation import load_spec
from bot.emulator.webhooks import WebhookDispatcher

__all__ = ["EmulatorConfig", "create_emulator_app"]


def create_emulator_app(config: EmulatorConfig) -> Flask:
    """A fresh emulator: its own in-memory store, the Messaging API paths on `/v2/...` and
    the control/inspection API on `/_emulator/...`, and the web chat simulator on `/simulator`
    (with its clock, timeline and bot-proxy endpoints). Serve it threaded (`ServerThread`)."""
    load_spec("messaging-api.yml")  # parse the vendored spec now, not on the first request
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = EmulatorStore(webhook_url=config.webhook_url)
    dispatcher = WebhookDispatcher(
        store,
        config.clock,
        config.channel_secret,
        config.destination,
        timeout_seconds=config.webhook_timeout_seconds,
    )
    app.extensions[EXTENSION_KEY] = Emulator(config=config, store=store, webhooks=dispatcher)
    app.register_blueprint(messaging.bp)
    app.register_blueprint(inspection.bp)
    app.register_blueprint(simulator.bp)

    @app.get("/_emulator/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
