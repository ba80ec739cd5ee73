"""`GET /healthz`: 200 when the database answers and a catalogue is loaded, else 503; which
process answered and which catalogue version it runs."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    runtime = current_app.extensions["stepline"]
    database_up = runtime.db.ping()
    catalogue_loaded = runtime.catalogues.loaded
    problems = [str(p) for p in runtime.catalogues.last_problems]
    ok = database_up and catalogue_loaded
    body = {
        "ok": ok,
        "database": "up" if database_up else "down",
        "catalogue": "loaded" if catalogue_loaded else "none (see catalogue_problems)",
        "catalogue_problems": problems,
        # Each gunicorn worker answers for itself: the pid tells them apart.
        "pid": os.getpid(),
        "catalogue_version": runtime.catalogues.status() if database_up else None,
    }
    return jsonify(body), 200 if ok else 503
