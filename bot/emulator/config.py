"""Settings of one emulated LINE channel."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.clock import Clock, SystemClock


@dataclass
class EmulatorConfig:
    """What one emulator instance pretends to be.

    `webhook_url` is only the starting value: it can be changed at run time through
    `PUT /_emulator/config`, which is stored in the emulator's state, not here.
    """

    channel_secret: str
    channel_access_token: str
    webhook_url: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    reply_token_ttl_seconds: float = 60
    # Benchmarks post webhooks straight to the bot, with reply tokens the emulator never
    # issued; this accepts each such token once (a used token is still rejected).
    accept_unknown_reply_tokens: bool = False
    retry_key_ttl_seconds: float = 24 * 3600
    webhook_timeout_seconds: float = 10
    # `None` = no target limit (`GET /v2/bot/message/quota` answers `{"type": "none"}`).
    monthly_quota: int | None = None
    # Narrowcasts fail (progress `errorCode` 4) when an audience in the recipient has fewer
    # users than this (the spec's NarrowcastProgressResponse: "An audience of less than 50
    # recipients is included as a condition of sending").
    narrowcast_min_audience: int = 50
    # LINE: "You can create up to 1000 rich menus for one LINE Official Account with the
    # Messaging API", and up to 1,000 rich menu aliases (lower them to test the limits).
    rich_menu_limit: int = 1000
    rich_menu_alias_limit: int = 1000
    bot_user_id: str | None = None
    bot_display_name: str = "stepline emulator"
    bot_basic_id: str = "@stepline"
    # Calendar month for quota consumption (LINE counts months in Japan time).
    quota_timezone: str = "Asia/Tokyo"
    # The simulator page's side panel reads the bot's admin API (tags, fields, flow state)
    # through the emulator, so the browser needs neither the token nor a second origin.
    bot_api_url: str | None = None
    bot_admin_token: str | None = None
    # The account's time zone, for showing the (movable) clock on the simulator page.
    account_timezone: str = "Asia/Tokyo"
    # A Japanese font file the simulator page falls back on for characters the browser's own
    # fonts lack (a machine with no CJK font would draw boxes). The CLI passes the font
    # bundled for rich-menu images; None: the page relies on the machine's fonts.
    page_font: Path | None = None
    # Called after the simulator's time machine moves the clock (the demo sweeps timed-out
    # questionnaires and, later, runs due steps).
    on_clock_change: Callable[[], object] | None = None
    # Chaos switched on from the start: the body of `PUT /_emulator/chaos` (None: off).
    chaos: dict[str, Any] | None = None
    # Rate limits from the start: the body of `PUT /_emulator/rate_limits`,
    # `{"enabled": true, "limits": {...} | null}` (None: off, LINE's table when switched on).
    rate_limits: dict[str, Any] | None = None

    @property
    def destination(self) -> str:
        """The bot's user id (webhook `destination`): fixed, or derived from the secret."""
        if self.bot_user_id:
            return self.bot_user_id
        digest = hashlib.sha256(("stepline-bot:" + self.channel_secret).encode()).hexdigest()
        return "U" + digest[:32]
