"""`GET /metrics`: Prometheus text (the figures: `bot.services.metrics`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from bot.services.metrics import render

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    body = render(current_app.extensions["stepline"])
    return Response(body, mimetype="text/plain; version=0.0.4")
