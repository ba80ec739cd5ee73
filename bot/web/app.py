"""The Flask app factory: config read early, services built once, blueprints registered."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.catalogue import Catalogue
from bot.clock import Clock
from bot.config import Settings
from bot.line.client import LineClient
from bot.logging_setup import configure_logging
from bot.runtime import Runtime
from bot.services.event_pool import EventPool
from bot.web import admin_api, health, links, metrics, webhook
from storage.db import Database


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    line: LineClient | None = None,
    catalogue: Catalogue | None = None,
    runtime: Runtime | None = None,
    process: str = "serve",
) -> Flask:
    """Build the bot. Tests pass their own settings, clock, database or catalogue; `process`
    names it in `catalogue_versions` (the demo's is "demo")."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    app = Flask("stepline")
    app.config["MAX_CONTENT_LENGTH"] = 4 * 1024 * 1024
    runtime = runtime or Runtime(settings, clock=clock, db=db, line=line, catalogue=catalogue)
    app.extensions["stepline"] = runtime
    # Webhook events are processed here, off the request (see bot.web.webhook); the sweep
    # thread is started by whoever runs the app for real (`serve`, the demo), not by tests.
    app.extensions["stepline.events"] = EventPool(runtime)
    # Every web process (each gunicorn worker) runs the newest catalogue version.
    runtime.catalogues.join(process)

    app.register_blueprint(webhook.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(admin_api.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(links.blueprint)

    @app.before_request
    def follow_the_catalogue() -> None:
        # One clock reading per request; a look at the newest version every
        # STEPLINE_CATALOGUE_CHECK_SECONDS; a reload off the request's thread.
        runtime.catalogues.follow(wait=False)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # JSON errors for machines; the webhook and API never answer HTML.
        response = jsonify({"error": exc.description or exc.name})
        return response, exc.code or 500

    @app.after_request
    def no_cache_for_api(response: Any) -> Any:
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    logging.getLogger(__name__).debug("app created for %s", settings.flows_dir)
    return app
