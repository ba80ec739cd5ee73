"""`create_emulator_app(config)`: the LINE Platform emulator as a Flask app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from bot.emulator import inspection, messaging, simulator
from bot.emulator import narrowcast as _narrowcast  # noqa: F401  (its routes are on messaging.bp)
from bot.emulator import richmenu_control as _richmenu_control  # noqa: F401  (on inspection.bp)
from bot.emulator import richmenus as _richmenus  # noqa: F401  (its routes are on messaging.bp)
from bot.emulator.chaos import Chaos, ChaosSettings
from bot.emulator.config import EmulatorConfig
from bot.emulator.context import DROP_RESPONSE, EXTENSION_KEY, Emulator
from bot.emulator.ratelimits import RateLimiter, settings_from_json
from bot.emulator.store import EmulatorStore
from bot.emulator.validation import load_spec
from bot.emulator.webhooks import WebhookDispatcher

__all__ = ["EmulatorConfig", "create_emulator_app"]


def create_emulator_app(config: EmulatorConfig) -> Flask:
    """A fresh emulator: its own in-memory store, the Messaging API paths on `/v2/...` and
    the control/inspection API on `/_emulator/...`, and the web chat simulator on `/simulator`
    (with its clock, timeline and bot-proxy endpoints). Serve it threaded (`ServerThread`)."""
    load_spec("messaging-api.yml")  # parse the vendored specs now, not on the first request
    load_spec("manage-audience.yml")
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
    chaos = Chaos(store.lock, ChaosSettings.from_json(config.chaos) if config.chaos else None)
    enabled, limits = settings_from_json(config.rate_limits or {"enabled": False})
    app.extensions[EXTENSION_KEY] = Emulator(
        config=config,
        store=store,
        webhooks=dispatcher,
        chaos=chaos,
        rate_limits=RateLimiter(enabled, limits),
    )
    app.wsgi_app = ResponseDropper(app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(messaging.bp)
    app.register_blueprint(inspection.bp)
    app.register_blueprint(simulator.bp)

    @app.get("/_emulator/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


class ResponseDropper:
    """WSGI middleware: when a view flagged its response to be dropped (`DROP_RESPONSE`, set
    for chaos `accept_then_drop` after the work is done), close the connection without
    answering, so the client sees a connection error ("Remote end closed connection without
    response"), never an HTTP status.

    It raises `ConnectionAbortedError` before anything is written, which stepline's server
    (`bot.emulator.http_server`: `ServerThread`, `stepline emulator`) answers by closing the connection
    with nothing sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        if not environ.get(DROP_RESPONSE):
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise ConnectionAbortedError("response dropped by the LINE emulator (accept_then_drop)")
