"""Logging with secrets scrubbed: tokens and the channel secret never reach a log line."""

from __future__ import annotations

import logging
import os

from bot.config import Settings


class RedactSecrets(logging.Filter):
    """Replace any configured secret that appears in a record's message with `***`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_installed: dict[str, RedactSecrets] = {}


def configure_logging(settings: Settings, *, default_level: str = "INFO") -> None:
    """Log lines with secrets scrubbed, at `STEPLINE_LOG_LEVEL` or else `default_level`: INFO
    for the processes that run the bot (`serve`, `worker`, `demo`), WARNING for the one-shot
    commands, whose own output is what a person reads."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=(os.environ.get("STEPLINE_LOG_LEVEL") or default_level).upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    # `transitions` logs every state change at INFO: per-friend noise, not operations.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # APScheduler logs every tick at INFO and a WARNING whenever a tick finds the previous
    # one still running (a long drain): both expected with fixed ticks. Errors still show.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    secrets = [
        settings.channel_secret,
        settings.channel_access_token,
        settings.admin_token or "",
        settings.link_secret or "",
    ]
    redactor = RedactSecrets(secrets)
    for handler in root.handlers:
        old = _installed.get(str(id(handler)))
        if old is not None:
            handler.removeFilter(old)
        handler.addFilter(redactor)
        _installed[str(id(handler))] = redactor
