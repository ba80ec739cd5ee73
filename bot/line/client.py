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
    CreateRichMenuAliasRequest,
    MessagingApi,
    ReplyMessageRequest,
    RichMenuBulkLinkRequest,
    RichMenuBulkUnlinkRequest,
    RichMenuRequest,
    UpdateRichMenuAliasRequest,
)

from bot.line.limits import MAX_MULTICAST_RECIPIENTS
from bot.line.sdk import to_sdk

log = logging.getLogger(__name__)

# The answers the SDK's push and multicast methods declare (errors carry ErrorResponse); a
# push's 200 body (sent message ids) is kept as plain JSON: nothing here reads it.
_SEND_RESPONSES = {
    "200": "object",
    "400": "ErrorResponse",
    "403": "ErrorResponse",
    "409": "ErrorResponse",
    "429": "ErrorResponse",
}


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

    def __init__(
        self,
        base_url: str,
        access_token: str,
        timeout: float = 5.0,
        data_base_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # LINE serves rich menu images on its data host (`LINE_DATA_API_DEFAULT`).
        self.data_base_url = (data_base_url or base_url).rstrip("/")
        self.timeout = timeout
        configuration = Configuration(host=self.base_url, access_token=access_token)
        self._api_client = ApiClient(configuration)
        self._api = MessagingApi(self._api_client)

    def close(self) -> None:
        self._api_client.close()

    # ------------------------------------------------------------------ sends

    def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> SendResult:
        request = ReplyMessageRequest(
            reply_token=reply_token, messages=[to_sdk(m) for m in messages]
        )
        response = self._call(self._api.reply_message_with_http_info, request)
        return SendResult(request_id=_header(response.headers, "x-line-request-id"))

    def push(self, to: str, messages: list[dict[str, Any]], retry_key: str) -> SendResult:
        """One user. Sent like `multicast` (see there): the SDK's request model and its
        response model cost more CPU than the request, once per friend for personal steps."""
        body = {"to": to, "messages": [to_sdk(m).to_dict() for m in messages]}
        return self._send_with_key("/v2/bot/message/push", body, retry_key)

    def multicast(
        self, to: list[str], messages: list[dict[str, Any]], retry_key: str
    ) -> SendResult:
        """Up to 500 recipients. The messages go through the SDK's message models as for
        every send, but the body goes to the SDK's API client as JSON data rather than a
        `MulticastRequest`: that model validates each of the 500 user ids twice (pydantic),
        which cost the worker three times as much CPU as the HTTP request itself. The ids
        are LINE's own, read from webhooks and stored; LINE checks them again anyway."""
        if not 1 <= len(to) <= MAX_MULTICAST_RECIPIENTS:
            raise ValueError(f"a multicast has 1 to {MAX_MULTICAST_RECIPIENTS} recipients")
        body = {"to": list(to), "messages": [to_sdk(m).to_dict() for m in messages]}
        return self._send_with_key("/v2/bot/message/multicast", body, retry_key)

    def _post_keyed(self, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
        """POST a send with its retry key as the SDK's own send methods do (same client, auth,
        headers and error handling); the answer's body is left as JSON, unread."""
        headers = {
            "X-Line-Retry-Key": kwargs.pop("x_line_retry_key"),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        return self._api_client.call_api(
            path,
            "POST",
            {},
            [],
            headers,
            body=body,
            post_params=[],
            files={},
            response_types_map=_SEND_RESPONSES,
            auth_settings=["Bearer"],
            **kwargs,
        )

    def _send_with_key(self, path: str, body: dict[str, Any], retry_key: str) -> SendResult:
        try:
            response = self._call(self._post_keyed, path, body, x_line_retry_key=retry_key)
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

    # ------------------------------------------------------------------ rich menus

    def create_rich_menu(self, menu: dict[str, Any]) -> str:
        """Create a rich menu from LINE's menu object (API JSON); its new id."""
        request = RichMenuRequest.from_dict(menu)
        return str(self._call(self._api.create_rich_menu_with_http_info, request).data.rich_menu_id)

    def set_rich_menu_image(self, rich_menu_id: str, image: bytes, content_type: str) -> None:
        """Upload the menu's image. The SDK pins this call to api-data.line.me, so the
        request goes through the SDK's client with the data host named explicitly."""
        self._call(
            self._api_client.call_api,
            "/v2/bot/richmenu/{richMenuId}/content",
            "POST",
            {"richMenuId": rich_menu_id},
            [],
            {"Content-Type": content_type},
            body=image,
            post_params=[],
            files={},
            response_types_map={},
            auth_settings=["Bearer"],
            _host=self.data_base_url,
        )

    def delete_rich_menu(self, rich_menu_id: str) -> None:
        self._call(self._api.delete_rich_menu_with_http_info, rich_menu_id)

    def rich_menu_names(self) -> dict[str, str]:
        """Rich menu id → its name, for every rich menu of the channel."""
        data = self._call(self._api.get_rich_menu_list_with_http_info).data
        return {menu.rich_menu_id: menu.name for menu in data.richmenus or []}

    def rich_menu_aliases(self) -> dict[str, str]:
        """Alias id → rich menu id, for every alias of the channel."""
        data = self._call(self._api.get_rich_menu_alias_list_with_http_info).data
        return {a.rich_menu_alias_id: a.rich_menu_id for a in data.aliases or []}

    def create_rich_menu_alias(self, alias: str, rich_menu_id: str) -> None:
        request = CreateRichMenuAliasRequest(rich_menu_alias_id=alias, rich_menu_id=rich_menu_id)
        self._call(self._api.create_rich_menu_alias_with_http_info, request)

    def update_rich_menu_alias(self, alias: str, rich_menu_id: str) -> None:
        request = UpdateRichMenuAliasRequest(rich_menu_id=rich_menu_id)
        self._call(self._api.update_rich_menu_alias_with_http_info, alias, request)

    def delete_rich_menu_alias(self, alias: str) -> None:
        self._call(self._api.delete_rich_menu_alias_with_http_info, alias)

    def default_rich_menu(self) -> str | None:
        try:
            data = self._call(self._api.get_default_rich_menu_id_with_http_info).data
        except LineRejected as exc:
            if exc.status == 404:
                return None
            raise
        return str(data.rich_menu_id)

    def set_default_rich_menu(self, rich_menu_id: str) -> None:
        self._call(self._api.set_default_rich_menu_with_http_info, rich_menu_id)

    def cancel_default_rich_menu(self) -> None:
        self._call(self._api.cancel_default_rich_menu_with_http_info)

    def link_rich_menu(self, user_ids: list[str], rich_menu_id: str | None) -> None:
        """Link `rich_menu_id` to the users (None: unlink, so the default shows): one
        per-user request for one user, else one bulk request (≤ 500 users)."""
        if len(user_ids) == 1:
            if rich_menu_id is None:
                self._call(self._api.unlink_rich_menu_id_from_user_with_http_info, user_ids[0])
            else:
                self._call(
                    self._api.link_rich_menu_id_to_user_with_http_info, user_ids[0], rich_menu_id
                )
        elif rich_menu_id is None:
            request = RichMenuBulkUnlinkRequest(user_ids=user_ids)
            self._call(self._api.unlink_rich_menu_id_from_users_with_http_info, request)
        else:
            bulk = RichMenuBulkLinkRequest(rich_menu_id=rich_menu_id, user_ids=user_ids)
            self._call(self._api.link_rich_menu_id_to_users_with_http_info, bulk)

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise _error_from(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise LineRetryableError(f"LINE unreachable: {type(exc).__name__}: {exc}") from exc


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
