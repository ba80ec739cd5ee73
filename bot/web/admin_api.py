"""The admin JSON API under `/api/v1` (bearer token `STEPLINE_ADMIN_TOKEN`)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.runtime import Runtime
from bot.services import reach
from bot.services.broadcasts import list_broadcasts
from bot.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from bot.services.events import post_event
from bot.services.friends import friend_json, get_friend, list_friends, patch_friend
from bot.services.json_input import MAX_BODY_BYTES, parse_object

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

# What each kind of refusal of a use case answers (the services know no HTTP statuses).
STATUS_OF: tuple[tuple[type[ServiceError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
)


class ApiError(Exception):
    """A refusal of the API itself, before any use case runs (token, body shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def runtime() -> Runtime:
    return current_app.extensions["stepline"]


@blueprint.before_request
def require_token() -> Any:
    token = runtime().settings.admin_token
    if token is None:
        raise ApiError(404, "the admin API is off (set STEPLINE_ADMIN_TOKEN to turn it on)")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "missing or wrong bearer token")
    return None


def error_json(status: int, message: str, details: list[Any]) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return jsonify(body), status


@blueprint.errorhandler(ApiError)
def api_error(exc: ApiError) -> tuple[Response, int]:
    return error_json(exc.status, exc.message, [])


@blueprint.errorhandler(ServiceError)
def service_error(exc: ServiceError) -> tuple[Response, int]:
    """A use case refused: its kind says the status, its details the problems."""
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 422)
    return error_json(status, exc.message, exc.details)


def json_body(max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object within `bot.services.json_input`'s bounds (else a 422)."""
    if not request.is_json:
        raise ApiError(422, "the body must be a JSON object (Content-Type: application/json)")
    return parse_object(request.get_data(cache=False), max_bytes=max_bytes)


@blueprint.get("/friends/<line_user_id>")
def friend(line_user_id: str) -> Any:
    return jsonify(get_friend(runtime(), line_user_id))


@blueprint.get("/friends")
def friends() -> Any:
    return jsonify(list_friends(runtime(), request.args))


@blueprint.patch("/friends/<line_user_id>")
def change_friend(line_user_id: str) -> Any:
    return jsonify(patch_friend(runtime(), line_user_id, json_body()))


@blueprint.post("/events")
def outside_event() -> Any:
    return jsonify(post_event(runtime(), json_body()))


@blueprint.post("/segments/count")
def segment_count() -> Any:
    return jsonify(reach.reach(runtime(), json_body(), sample=0))


@blueprint.post("/segments/preview")
def segment_preview() -> Any:
    body = json_body()
    size = body.pop("sample", 10)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise ApiError(422, "'sample' must be an integer from 1 to 100")
    return jsonify(reach.reach(runtime(), body, sample=size))


@blueprint.post("/broadcasts")
def create_broadcast() -> Any:
    return jsonify(reach.create_broadcast(runtime(), json_body())), 201


@blueprint.get("/broadcasts")
def broadcasts() -> Any:
    return jsonify({"broadcasts": list_broadcasts(runtime())})


@blueprint.get("/broadcasts/<int:broadcast_id>")
def broadcast(broadcast_id: int) -> Any:
    return jsonify(reach.broadcast_status(runtime(), broadcast_id))


@blueprint.post("/broadcasts/<int:broadcast_id>/cancel")
def cancel_broadcast(broadcast_id: int) -> Any:
    return jsonify(reach.cancel_broadcast(runtime(), broadcast_id))


@blueprint.post("/audiences")
def upload_audience() -> Any:
    """JSON `{"name", "user_ids": [...]}`, or a TXT/CSV body with `?name=`."""
    if request.is_json:
        # As large as a text upload: a list of ids is what this body is for.
        body = json_body(max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
        ids = body.get("user_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(422, "'user_ids' must be a list of LINE user ids")
        result = reach.upload_audience(runtime(), body.get("name"), "\n".join(ids), "api")
    else:
        text = request.get_data(as_text=True)
        result = reach.upload_audience(runtime(), request.args.get("name"), text, "api upload")
    return jsonify(result), 201


@blueprint.get("/audiences")
def audiences() -> Any:
    return jsonify(reach.audiences(runtime()))


@blueprint.post("/flows/reload")
def reload_flows() -> Any:
    result = runtime().catalogues.reload(how="via API")
    if not result.ok:
        return jsonify(
            {
                "ok": False,
                "error": "the catalogue has problems; the previous one stays in force",
                "problems": [str(p) for p in result.problems],
            }
        ), 422
    assert result.catalogue is not None
    # Every other serve and worker process moves to this version within
    # STEPLINE_CATALOGUE_CHECK_SECONDS (or says in /healthz why it cannot).
    version = result.version.json() if result.version is not None else None
    return jsonify(
        {
            "ok": True,
            "flows": sorted(result.catalogue.flows),
            "catalogue_version": version or {"id": None, "hash": result.catalogue.content_hash},
        }
    )


__all__ = ["blueprint", "friend_json"]
