"""One turn: everything that happens to one friend because of one cause, in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.catalogue import Catalogue
from bot.catalogue.messages import fit_rendered, text_message, to_api_json
from bot.catalogue.models import MessageDef, Trigger
from bot.engine.friend_record import FriendRecord
from bot.engine.templates import Templates

log = logging.getLogger(__name__)

MAX_TRIGGER_ROUNDS = 10  # a flow whose completion starts itself must not loop forever


@dataclass(frozen=True)
class SkippedSend:
    """Messages the engine decided not to send (a step late beyond the grace under the
    `skip` policy): the service that ends the turn records them, with why."""

    messages: list[dict[str, Any]]
    cause: str
    due_at: datetime
    reason: str


@dataclass
class Turn:
    """The friend, the catalogue in force, and what the turn has produced so far."""

    record: FriendRecord
    catalogue: Catalogue
    templates: Templates
    cause: str
    reply_token: str | None = None
    outgoing: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    requested_flow: str | None = None
    # ("start" | "stop", sequence name) from `start_sequence` / `stop_sequence` actions
    sequence_requests: list[tuple[str, str]] = field(default_factory=list)
    event_values: dict[str, Any] = field(default_factory=dict)
    forced_menu: str | None = None  # a `rich_menu` action's menu, applied when the turn ends
    relink_menu: bool = False  # link the friend's menu even if unchanged (they came back)
    # The friend's rich menu changed (or must be linked again): the service that ends the
    # turn queues the link (`bot.services.turns.finish_turns`); the engine only decides.
    link_menu: bool = False
    skipped: list[SkippedSend] = field(default_factory=list)  # recorded, never sent

    @property
    def now(self) -> datetime:
        return self.record.now

    # ------------------------------------------------------------------ templates

    def template_values(self, names: Collection[str] | None = None) -> dict[str, Any]:
        """What templates see (`friend`, `fields`, `tags`, `answers`, `now`, `event`); only
        the `names` asked for are built (each of fields, tags and answers is a query)."""
        friend = self.record.friend
        makers: dict[str, Callable[[], Any]] = {
            "friend": lambda: {"name": friend.display_name, "line_user_id": friend.line_user_id},
            "fields": lambda: dict(self.record.fields),
            "tags": lambda: sorted(self.record.tags),
            "answers": lambda: self.record.answers,
            "now": lambda: self.now,
        }
        if self.event_values:
            makers["event"] = lambda: self.event_values
        wanted = makers if names is None else [name for name in names if name in makers]
        return {name: makers[name]() for name in wanted}

    def link(self, link_id: str) -> str:
        """`{{ link('id') }}`: this friend's tracked `/r/<token>` address for the catalogue
        link (`bot.engine.link_tokens`), carrying the turn's cause as the message it came from."""
        link = self.catalogue.links.get(link_id) if isinstance(link_id, str) else None
        if link is None:
            log.warning("%s: template names unknown link %r; rendered empty", self.cause, link_id)
            return ""
        tokens = self.templates.links
        if tokens is None:  # no secret to sign with (see LinkTokens.from_settings)
            return link.url
        return tokens.url(self.record.friend.line_user_id, link_id, self.cause)

    def render(self, text: str) -> str:
        return self.templates.render(text, self.template_values, self.link)

    # ------------------------------------------------------------------ output

    def say(self, text: str, quick_replies: list[dict[str, Any]] | None = None) -> None:
        self._queue(text_message(self.render(text), quick_replies))

    def send(self, message: MessageDef) -> None:
        # Checked against LINE's schema when the catalogue (or the API request) brought it in;
        # rendering changes strings only, and `_queue` fits them to LINE's limits.
        self._queue(to_api_json(message, self.render))

    def _queue(self, api_json: dict[str, Any]) -> None:
        fitted, changes = fit_rendered(api_json)
        for change in changes:
            log.warning("%s: %s", self.cause, change)
        if fitted is not None:
            self.outgoing.append(fitted)

    def emit(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)
