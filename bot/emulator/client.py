"""A small typed client for the emulator's `/_emulator/` control API (chat clients, tests)."""

from __future__ import annotations

from typing import Any

import requests


class EmulatorError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EmulatorClient:
    def __init__(self, base_url: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, f"{self.base_url}/_emulator{path}", timeout=self.timeout, **kwargs
        )
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        if response.status_code >= 400:
            message = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
            raise EmulatorError(response.status_code, str(message or body))
        return body

    # users
    def create_user(self, name: str, user_id: str | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, **extra}
        if user_id:
            body["user_id"] = user_id
        return dict(self._call("POST", "/users", json=body))

    def add_friends(self, user_ids: list[str]) -> int:
        """Many users who are already friends, without webhooks (`POST /users/bulk`)."""
        return int(self._call("POST", "/users/bulk", json={"user_ids": user_ids})["created"])

    def user(self, user_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/users/{user_id}"))

    def users(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/users")["users"])

    # user actions (each posts a signed webhook; the answer has the bot's status and the event)
    def follow(self, user_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/users/{user_id}/follow"))

    def unfollow(self, user_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/users/{user_id}/unfollow"))

    def text(self, user_id: str, text: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/users/{user_id}/text", json={"text": text}))

    def postback(
        self,
        user_id: str,
        data: str,
        display_text: str | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"data": data}
        if display_text is not None:
            body["displayText"] = display_text
        if params:
            body["params"] = params
        return dict(self._call("POST", f"/users/{user_id}/postback", json=body))

    def messages(self, user_id: str, since: int = 0) -> dict[str, Any]:
        """`{"messages": [...], "last_seq": n}`: what the user received after `since`."""
        return dict(self._call("GET", f"/users/{user_id}/messages", params={"since": since}))

    # raw webhooks
    def post_events(self, events: list[dict[str, Any]], redeliver: bool = False) -> dict[str, Any]:
        body = {"events": events, "redeliver": redeliver}
        return dict(self._call("POST", "/webhook", json=body))

    def redeliver(self, webhook_event_id: str) -> dict[str, Any]:
        body = {"webhookEventId": webhook_event_id}
        return dict(self._call("POST", "/redeliver", json=body))

    # rich menus
    def rich_menu(self, user_id: str) -> dict[str, Any] | None:
        """The menu the user sees now (`richMenuId`, `source`: user/default/switched, the
        aliases pointing to it, the rich menu object's fields, `imageUrl`), or None when the
        user sees none."""
        try:
            return dict(self._call("GET", f"/users/{user_id}/richmenu"))
        except EmulatorError as exc:
            if exc.status == 404:
                return None
            raise

    def switch_rich_menu(self, user_id: str, alias_id: str, data: str) -> dict[str, Any]:
        """The user taps a rich menu switch area: `{"status", "error", "event", "switch":
        {"status", "richMenuAliasId", "richMenuId"}, "richMenu"}`."""
        body = {"richMenuAliasId": alias_id, "data": data}
        return dict(self._call("POST", f"/users/{user_id}/richmenu/switch", json=body))

    def rich_menus(self) -> dict[str, Any]:
        """Every menu (with `hasImage`, `aliases`, `linkedUsers`, `isDefault`), the default,
        aliases, links, switched displays and bulk link/unlink requests."""
        return dict(self._call("GET", "/richmenus"))

    # inspection and control
    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """API requests received, oldest first (only those to `path` / with `method`)."""
        params = {key: value for key, value in (("path", path), ("method", method)) if value}
        return list(self._call("GET", "/requests", params=params)["requests"])

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks")["webhooks"])

    def dropped(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/dropped")["dropped"])

    def stats(self, per_user: bool = True) -> dict[str, Any]:
        """Totals, and per user (`users`: billable, delivered_messages, accepted_requests by
        endpoint) unless `per_user` is False."""
        params = None if per_user else {"per_user": "false"}
        return dict(self._call("GET", "/stats", params=params))

    def accepted(
        self, path: str | None = None, user_id: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        """Accepted sends (request_id, path, via, retry_key, recipients, texts, messages, at,
        response_status: None when the response was dropped), oldest first."""
        params: dict[str, Any] = {"since": since}
        if path:
            params["path"] = path
        if user_id:
            params["user_id"] = user_id
        return list(self._call("GET", "/accepted", params=params)["accepted"])

    def accepted_counts(
        self, path: str | None = None, via: str | list[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """`{user_id: {message text: n}}` over accepted sends (delivered or not)."""
        params: dict[str, Any] = {}
        if path:
            params["path"] = path
        if via:
            params["via"] = via if isinstance(via, str) else ",".join(via)
        return dict(self._call("GET", "/accepted/counts", params=params))

    def delivery_counts(
        self, via: str | list[str] | None = None, user_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """`{user_id: {message text: n}}`: how many times each message reached each user."""
        params: dict[str, Any] = {}
        if via:
            params["via"] = via if isinstance(via, str) else ",".join(via)
        if user_id:
            params["user_id"] = user_id
        return dict(self._call("GET", "/deliveries/counts", params=params))

    def audiences(self) -> list[dict[str, Any]]:
        """Uploaded audiences (the spec's AudienceGroup fields plus `user_ids`)."""
        return list(self._call("GET", "/audiences")["audiences"])

    def narrowcasts(self) -> list[dict[str, Any]]:
        """Accepted narrowcasts: `requestId`, their progress (phase, counts...), `recipients`."""
        return list(self._call("GET", "/narrowcasts")["narrowcasts"])

    def reset(self) -> None:
        self._call("POST", "/reset")

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "/config"))

    def set_webhook_url(self, url: str | None) -> dict[str, Any]:
        return dict(self._call("PUT", "/config", json={"webhook_url": url}))

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/faults", json=fault))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # probabilistic faults and rate limits
    def set_chaos(
        self,
        rates: dict[str, float] | None = None,
        *,
        retry_after: int | None = None,
        latency_ms: int | float | dict[str, float] | None = None,
        paths: str | list[str] = "*",
        seed: int | None = None,
        status_5xx: int = 500,
    ) -> dict[str, Any]:
        """Switch chaos on: `rates` by kind (`5xx`, `429`, `accept_then_drop`), latency as
        `{"min": ms, "max": ms}` or one number. Answers the settings and (zeroed) counters."""
        body: dict[str, Any] = {
            "rates": rates or {},
            "retry_after": retry_after,
            "latency_ms": latency_ms or 0,
            "paths": paths,
            "seed": seed,
            "status_5xx": status_5xx,
        }
        return dict(self._call("PUT", "/chaos", json=body))

    def chaos(self) -> dict[str, Any]:
        """`{"enabled", "settings", "counters": {"requests", "injected": {kind: {path: n}},
        ...}}`."""
        return dict(self._call("GET", "/chaos"))

    def clear_chaos(self) -> dict[str, Any]:
        """Switch chaos off; answers the counters as they were (`final_counters`)."""
        return dict(self._call("DELETE", "/chaos"))

    def set_rate_limits(
        self, enabled: bool = True, limits: dict[str, int | str | None] | None = None
    ) -> dict[str, Any]:
        """LINE's documented limits, with `limits` overriding them ("POST /v2/bot/message/push":
        20 = 20 per second, "60/min", "100/h"; None = unlimited; "*" = every other endpoint)."""
        return dict(self._call("PUT", "/rate_limits", json={"enabled": enabled, "limits": limits}))

    def rate_limits(self) -> dict[str, Any]:
        return dict(self._call("GET", "/rate_limits"))

    def disable_rate_limits(self) -> dict[str, Any]:
        return dict(self._call("DELETE", "/rate_limits"))
