"""What a use case says when it refuses: the kind of refusal and why, never an HTTP status.

The doors map the kinds: the admin API (`bot.web.admin_api`) answers 422 / 404 / 409, the CLI
prints the message and its details and exits 1; a tracked link (`bot.web.links`) answers 429
to `TooManyRequests`.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refusal: a message, and details (one per problem) when there are several."""

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(ServiceError):
    """The request is not valid; nothing was done."""


class NotFound(ServiceError):
    """What the request names does not exist (a friend, a broadcast, …)."""


class Conflict(ServiceError):
    """The request is valid, but the state does not allow it now (a broadcast already done)."""


class TooManyRequests(ServiceError):
    """Too many of these requests just now; nothing was done. `retry_after`: seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
