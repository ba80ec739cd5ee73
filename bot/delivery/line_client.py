"""The one LINE client: the official SDK (`linebot.v3`) behind a small typed surface.

Every call has a timeout; every failure is one of the `LineError` classes below, so callers
decide retry / give up / count-as-sent without knowing the SDK's exception types.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    Message,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
)

log = logging.getLogger(__name__)


class LineError(Exception):
    """A call to LINE did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []
        self.headers = headers or {}


class LineRetryableError(LineError):
    """5xx, a timeout or a connection failure: the same request may be retried (same key)."""


class LineRateLimited(LineRetryableError):
    """429; `retry_after` seconds if LINE said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class LineRejected(LineError):
    """A 4xx other than 409/429: LINE will not accept this request as it is."""


class LineAlreadyAccepted(LineError):
    """409 for a retry key: an earlier attempt with this key was accepted."""

    @property
    def accepted_request_id(self) -> str | None:
        return self.headers.get("x-line-accepted-request-id")


@dataclass(frozen=True)
class SendResult:
    request_id: str | None
    accepted_request_id: str | None = None  # set when a 409 told us an earlier try went through


@dataclass(frozen=True)
class Profile:
    user_id: str
    display_name: str
    picture_url: str | None = None
    language: str | None = None


class LineClient:
    """Messaging API calls stepline makes, with timeouts and typed errors."""

    def __init__(self, base_url: str, access_token: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        configuration = Configuration(host=self.base_url, access_token=access_token)
        self._api_client = ApiClient(configuration)
        self._api = MessagingApi(self._api_client)

    def close(self) -> None:
        self._api_client.close()

    # ------------------------------------------------------------------ sends

    def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> SendResult:
        request = ReplyMessageRequest(
            reply_token=reply_token, messages=[_message(m) for m in messages]
        )
        response = self._call(self._api.reply_message_with_http_info, request)
        return SendResult(request_id=_header(response.headers, "x-line-request-id"))

    def push(self, to: str, messages: list[dict[str, Any]], retry_key: str) -> SendResult:
        request = PushMessageRequest(to=to, messages=[_message(m) for m in messages])
        return self._send_with_key(self._api.push_message_with_http_info, request, retry_key)

    def multicast(
        self, to: list[str], messages: list[dict[str, Any]], retry_key: str
    ) -> SendResult:
        request = MulticastRequest(to=to, messages=[_message(m) for m in messages])
        return self._send_with_key(self._api.multicast_with_http_info, request, retry_key)

    def _send_with_key(self, method: Any, request: Any, retry_key: str) -> SendResult:
        try:
            response = self._call(method, request, x_line_retry_key=retry_key)
        except LineAlreadyAccepted as exc:
            # Documented meaning of 409 with a retry key: an earlier attempt was accepted.
            return SendResult(request_id=None, accepted_request_id=exc.accepted_request_id)
        return SendResult(request_id=_header(response.headers, "x-line-request-id"))

    # ------------------------------------------------------------------ reads

    def get_profile(self, user_id: str) -> Profile | None:
        """The user's profile, or None when LINE does not know them (404)."""
        try:
            response = self._call(self._api.get_profile_with_http_info, user_id)
        except LineRejected as exc:
            if exc.status == 404:
                return None
            raise
        data = response.data
        return Profile(
            user_id=data.user_id,
            display_name=data.display_name,
            picture_url=data.picture_url,
            language=data.language,
        )

    def get_quota(self) -> dict[str, Any]:
        quota = self._call(self._api.get_message_quota_with_http_info).data
        used = self._call(self._api.get_message_quota_consumption_with_http_info).data
        return {"type": quota.type, "value": quota.value, "total_usage": used.total_usage}

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise _error_from(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise LineRetryableError(f"LINE unreachable: {type(exc).__name__}: {exc}") from exc


def _message(api_json: dict[str, Any]) -> Message:
    model = Message.from_dict(api_json)
    if model is None:
        raise ValueError(f"not a LINE message: {api_json!r}")
    return model


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name:
            return str(value)
    return None


def _error_from(exc: ApiException) -> LineError:
    status = int(exc.status or 0)
    headers = {k.lower(): str(v) for k, v in dict(exc.headers or {}).items()}
    message, details = exc.reason or "error", []
    try:
        body = json.loads(exc.body or b"{}")
        message = body.get("message", message)
        details = body.get("details", [])
    except (ValueError, AttributeError):
        pass
    text = f"LINE answered {status}: {message}"
    if status == 409:
        return LineAlreadyAccepted(text, status=status, details=details, headers=headers)
    if status == 429:
        retry_after = headers.get("retry-after")
        return LineRateLimited(
            text,
            status=status,
            details=details,
            headers=headers,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if status >= 500 or status == 0:
        return LineRetryableError(text, status=status, details=details, headers=headers)
    return LineRejected(text, status=status, details=details, headers=headers)
