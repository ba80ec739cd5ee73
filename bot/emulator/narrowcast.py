"""Narrowcast, its progress, and the upload audiences it targets (on the Messaging API blueprint
of `messaging.py`, so they share its authentication, rate limits, faults, chaos and request log).

`POST /v2/bot/message/narrowcast` is checked like the other sends (retry key, JSON, 409 for a
retry key already accepted, the spec's `NarrowcastRequest`), answered `202` with `{}` (the spec's
`NarrowcastResponse`, an empty object) and the `x-line-request-id` the progress is read by, and
delivered at once: by the time the 202 goes out the progress is `succeeded` or `failed`.

What the emulator applies (the spec is the vendored `messaging-api.yml` / `manage-audience.yml`):

- `recipient`: `audience` (an audience uploaded here), `redelivery` (the users a multicast,
  broadcast or narrowcast with that request id reached) and `operator` objects (`and`, `or`,
  `not`: exactly one of them, `and`/`or` not empty) over them; no recipient = every friend. An
  unknown audience or request id is a 400 naming the property. Only friends are ever targets:
  members who blocked the account or never added it are left out (not dropped, not billed).
- `filter.demographic`: validated against the spec, then ignored: the emulator has no
  demographics, so every user matches every filter.
- `limit.max`: at most that many targets, "chosen at random" (spec, `Limit.max`).
- `limit.upToRemainingQuota`: targets cut at random to the remaining monthly quota (spec,
  `Limit.upToRemainingQuota`); with `forbidPartialDelivery` (allowed "only if
  upToRemainingQuota is set to true", else 400) the narrowcast is cancelled instead: `failed`,
  errorCode 5. Without it, a narrowcast over the quota is a 429 like the other sends (and so is
  any narrowcast once the quota is used up).
- An audience with fewer than 50 users anywhere in the recipient → `failed`, errorCode 4 (spec,
  `NarrowcastProgressResponse.errorCode`: "An audience of less than 50 recipients is included
  as a condition of sending"; `EmulatorConfig.narrowcast_min_audience`). No target at all →
  `failed`, errorCode 2 ("there weren't enough recipients").
"""

from __future__ import annotations

import random
from typing import Any

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue

from bot.emulator.context import Emulator, current, line_error
from bot.emulator.messaging import (
    MONTHLY_LIMIT,
    bp,
    conflict_response,
    deliver_to_many,
    invalid_request,
    json_body,
    keyed_send_request,
    read_retry_key,
    record_accepted,
    remaining_quota,
)
from bot.emulator.store import AcceptedRetryKey, NarrowcastProgress, StoreError
from bot.emulator.validation import ErrorDetail, property_path, validate_request

AUDIENCE_SPEC = "manage-audience.yml"
AUDIENCE_NOT_FOUND = "Audience group not found"
# Sends whose request id a redelivery recipient may name (the one-to-many sends).
REDELIVERABLE = {"multicast", "broadcast", "narrowcast"}
OPERATORS = ("and", "or", "not")

ERROR_NOT_ENOUGH_RECIPIENTS = 2
ERROR_SMALL_AUDIENCE = 4
ERROR_PARTIAL_DELIVERY_FORBIDDEN = 5

_random = random.Random()


# --- checks beyond the schema -----------------------------------------------------------------


def _operator_problems(node: Any, path: list[str | int]) -> list[ErrorDetail]:
    """An operator (recipient or demographic) has exactly one of and/or/not; and/or non-empty."""
    if not isinstance(node, dict) or node.get("type") != "operator":
        return []
    present = [op for op in OPERATORS if node.get(op) is not None]
    if len(present) != 1:
        return [ErrorDetail("must have exactly one of and, or, not", property_path(path))]
    op = present[0]
    value = node[op]
    if op in ("and", "or") and isinstance(value, list) and not value:
        return [ErrorDetail("Size must be at least 1", property_path([*path, op]))]
    return []


def _recipient_problems(node: Any, path: list[str | int]) -> list[ErrorDetail]:
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    if kind == "audience" and node.get("audienceGroupId") is None:
        return [ErrorDetail("must be specified", property_path([*path, "audienceGroupId"]))]
    if kind == "redelivery" and not node.get("requestId"):
        return [ErrorDetail("must be specified", property_path([*path, "requestId"]))]
    found = _operator_problems(node, path)
    if kind == "operator" and not found:
        for op in ("and", "or"):
            for i, child in enumerate(node.get(op) or []):
                found += _recipient_problems(child, [*path, op, i])
        if node.get("not") is not None:
            found += _recipient_problems(node["not"], [*path, "not"])
    return found


def _demographic_problems(node: Any, path: list[str | int]) -> list[ErrorDetail]:
    found = _operator_problems(node, path)
    if isinstance(node, dict) and node.get("type") == "operator" and not found:
        for op in ("and", "or"):
            for i, child in enumerate(node.get(op) or []):
                found += _demographic_problems(child, [*path, op, i])
        if node.get("not") is not None:
            found += _demographic_problems(node["not"], [*path, "not"])
    return found


def narrowcast_rules(body: dict[str, Any]) -> list[ErrorDetail]:
    """LINE's rules for a schema-valid `NarrowcastRequest` that the schema cannot express."""
    found = _recipient_problems(body.get("recipient"), ["recipient"])
    demographic = (body.get("filter") or {}).get("demographic")
    found += _demographic_problems(demographic, ["filter", "demographic"])
    limit = body.get("limit") or {}
    # Spec, Limit.forbidPartialDelivery: "can be set to true only if upToRemainingQuota is set
    # to true".
    if limit.get("forbidPartialDelivery") and not limit.get("upToRemainingQuota"):
        found.append(
            ErrorDetail(
                "can be true only if upToRemainingQuota is true", "limit.forbidPartialDelivery"
            )
        )
    return found


# --- recipients -------------------------------------------------------------------------------


class _Resolver:
    """Evaluates a recipient object to a set of user ids, remembering the audiences it used
    (`audiences`: id → audienceCount) and what it could not find (`problems`)."""

    def __init__(self, emu: Emulator, universe: set[str]) -> None:
        self.emu = emu
        self.universe = universe
        self.audiences: dict[int, int] = {}
        self.problems: list[ErrorDetail] = []

    def members(self, node: dict[str, Any], path: list[str | int]) -> set[str]:
        kind = node["type"]
        if kind == "audience":
            group_id = node["audienceGroupId"]
            group = self.emu.store.audience(group_id)
            if group is None:
                prop = property_path([*path, "audienceGroupId"])
                self.problems.append(ErrorDetail(AUDIENCE_NOT_FOUND, prop))
                return set()
            self.audiences[group_id] = group.count
            return set() if group.is_ifa else set(group.members)
        if kind == "redelivery":
            reached = self.emu.store.recipients_of(node["requestId"], REDELIVERABLE)
            if reached is None:
                prop = property_path([*path, "requestId"])
                self.problems.append(
                    ErrorDetail("no multicast, broadcast or narrowcast has this request ID", prop)
                )
                return set()
            return reached
        if node.get("and") is not None:
            parts = [self.members(child, [*path, "and", i]) for i, child in enumerate(node["and"])]
            return set.intersection(*parts)
        if node.get("or") is not None:
            parts = [self.members(child, [*path, "or", i]) for i, child in enumerate(node["or"])]
            return set.union(*parts)
        return self.universe - self.members(node["not"], [*path, "not"])


def _at_random(user_ids: list[str], most: int) -> list[str]:
    """`most` of the ids chosen at random, kept in their original order."""
    if len(user_ids) <= most:
        return user_ids
    chosen = set(_random.sample(user_ids, most))
    return [uid for uid in user_ids if uid in chosen]


# --- narrowcast -------------------------------------------------------------------------------


@bp.post("/v2/bot/message/narrowcast")
def narrowcast() -> ResponseReturnValue:
    emu = current()
    key, body = keyed_send_request(
        emu, "NarrowcastRequest", with_sent_messages=False, rules=narrowcast_rules
    )
    messages: list[dict[str, Any]] = body["messages"]
    limit: dict[str, Any] = body.get("limit") or {}
    with emu.store.lock:
        conflict = conflict_response(emu, key, with_sent_messages=False)
        if conflict is not None:
            return conflict
        friends = emu.store.friend_ids()
        resolver = _Resolver(emu, set(friends))
        recipient = body.get("recipient")
        chosen = resolver.members(recipient, ["recipient"]) if recipient else set(friends)
        if resolver.problems:
            return invalid_request(resolver.problems)
        targets = [uid for uid in friends if uid in chosen]
        if limit.get("max") is not None:
            targets = _at_random(targets, limit["max"])
        now = emu.config.clock.now()
        progress = NarrowcastProgress(g.line_request_id, now, completed_at=now)
        small = sorted(
            group_id
            for group_id, count in resolver.audiences.items()
            if count < emu.config.narrowcast_min_audience
        )
        if small:
            progress.error_code = ERROR_SMALL_AUDIENCE
            progress.failed_description = (
                f"The audience {small[0]} has fewer than "
                f"{emu.config.narrowcast_min_audience} recipients"
            )
        elif not targets:
            progress.error_code = ERROR_NOT_ENOUGH_RECIPIENTS
            progress.failed_description = "There were not enough recipients"
        else:
            remaining = remaining_quota(emu)
            if remaining is not None and len(targets) > remaining:
                if not limit.get("upToRemainingQuota") or remaining == 0:
                    return line_error(429, MONTHLY_LIMIT)
                if limit.get("forbidPartialDelivery"):
                    progress.error_code = ERROR_PARTIAL_DELIVERY_FORBIDDEN
                    progress.failed_description = (
                        f"Only {remaining} of {len(targets)} targets are within the monthly "
                        "limit, and partial delivery is forbidden"
                    )
                else:
                    targets = _at_random(targets, remaining)
        progress.target_count = len(targets)
        if progress.error_code is None:
            delivered = deliver_to_many(emu, "narrowcast", targets, messages)
            progress.phase = "succeeded"
            progress.success_count = delivered
            progress.failure_count = len(targets) - delivered
            progress.recipients = targets
        else:
            progress.phase = "failed"
            progress.success_count = 0
            progress.failure_count = 0
        emu.store.record_narrowcast(progress)
        if key:
            emu.store.accept_retry_key(
                AcceptedRetryKey(key, g.line_request_id, now, request.path, None)
            )
        record_accepted(emu, "narrowcast", key, progress.recipients, messages, answered=202)
    return jsonify({}), 202


@bp.get("/v2/bot/message/progress/narrowcast")
def narrowcast_progress() -> ResponseReturnValue:
    request_id = request.args.get("requestId")
    if not request_id:
        return line_error(
            400, "The request has 1 error(s)", [ErrorDetail("must be specified", "requestId")]
        )
    progress = current().store.narrowcast(request_id)
    if progress is None:
        return line_error(404, "Not found")
    return jsonify(progress.to_json())


# --- audiences for uploading user IDs (by JSON) -----------------------------------------------


def _audience_ids(body: dict[str, Any]) -> tuple[list[str], list[ErrorDetail]]:
    ids: list[str] = []
    problems: list[ErrorDetail] = []
    for i, audience in enumerate(body.get("audiences") or []):
        value = audience.get("id") if isinstance(audience, dict) else None
        if not value:
            problems.append(ErrorDetail("must be specified", f"audiences[{i}].id"))
        else:
            ids.append(value)
    return ids, problems


def _required(body: Any, *names: str) -> list[ErrorDetail]:
    if not isinstance(body, dict):
        return []
    return [ErrorDetail("must be specified", name) for name in names if body.get(name) is None]


@bp.post("/v2/bot/audienceGroup/upload")
def create_audience_group() -> ResponseReturnValue:
    """Spec `CreateAudienceGroupRequest` → 202 `CreateAudienceGroupResponse`. LINE's reference
    requires `description` (the schema does not say so)."""
    emu = current()
    read_retry_key(supported=False)
    body = json_body()
    details = validate_request("CreateAudienceGroupRequest", body, spec=AUDIENCE_SPEC)
    details = details or _required(body, "description")
    ids: list[str] = []
    if not details:
        ids, details = _audience_ids(body)
    if details:
        return invalid_request(details)
    group = emu.store.create_audience(
        body["description"],
        ids,
        emu.config.clock.now(),
        is_ifa=bool(body.get("isIfaAudience")),
    )
    created = {
        key: value
        for key, value in group.to_json().items()
        if key not in ("status", "audienceCount")
    }
    return jsonify(created), 202


@bp.put("/v2/bot/audienceGroup/upload")
def add_to_audience_group() -> ResponseReturnValue:
    """Spec `AddAudienceToAudienceGroupRequest` → 202 `{}`; LINE's reference requires
    `audienceGroupId` and `audiences`."""
    emu = current()
    read_retry_key(supported=False)
    body = json_body()
    details = validate_request("AddAudienceToAudienceGroupRequest", body, spec=AUDIENCE_SPEC)
    details = details or _required(body, "audienceGroupId", "audiences")
    ids: list[str] = []
    if not details:
        ids, details = _audience_ids(body)
    if details:
        return invalid_request(details)
    try:
        emu.store.add_to_audience(
            body["audienceGroupId"],
            ids,
            emu.config.clock.now(),
            upload_description=body.get("uploadDescription"),
        )
    except StoreError:
        return line_error(400, AUDIENCE_NOT_FOUND)
    return jsonify({}), 202


@bp.get("/v2/bot/audienceGroup/<audienceGroupId>")
def get_audience_group(audienceGroupId: str) -> ResponseReturnValue:
    """Spec `GetAudienceDataResponse`: the group (always READY) and its add-ids jobs."""
    if not audienceGroupId.isdigit():
        return line_error(404, "Not found")  # another path (list, shared/...): not emulated
    group = current().store.audience(int(audienceGroupId))
    if group is None:
        return line_error(400, AUDIENCE_NOT_FOUND)
    jobs = [
        {
            "audienceGroupJobId": job.job_id,
            "audienceGroupId": group.audience_group_id,
            "description": job.description or "",
            "type": "DIFF_ADD",
            "jobStatus": "FINISHED",
            "audienceCount": job.added,
            "created": int(job.created_at.timestamp()),
        }
        for job in group.jobs
    ]
    return jsonify({"audienceGroup": group.to_json(), "jobs": jobs})


@bp.delete("/v2/bot/audienceGroup/<audienceGroupId>")
def delete_audience_group(audienceGroupId: str) -> ResponseReturnValue:
    if not audienceGroupId.isdigit():
        return line_error(404, "Not found")
    if not current().store.delete_audience(int(audienceGroupId)):
        return line_error(400, AUDIENCE_NOT_FOUND)
    return jsonify({})
