"""`GET /healthz`: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    runtime = current_app.extensions["stepline"]
    ok = runtime.db.ping()
    problems = [str(p) for p in runtime.catalogues.last_problems]
    body = {"ok": ok, "database": "up" if ok else "down", "catalogue_problems": problems}
    return jsonify(body), 200 if ok else 503
