"""Settings read once from the environment (and `.env`), passed explicitly everywhere."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv

from bot.line.ratelimit import DEFAULT_LIMITS

LINE_API_DEFAULT = "https://api.line.me"
LINE_DATA_API_DEFAULT = "https://api-data.line.me"


class ConfigError(ValueError):
    """A setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Everything stepline reads from its environment; build it with `Settings.from_env()`."""

    database_url: str = "sqlite:///instance/stepline.db"
    channel_secret: str = ""
    channel_access_token: str = ""
    line_api_base_url: str = LINE_API_DEFAULT
    line_data_api_base_url: str = LINE_DATA_API_DEFAULT
    flows_dir: Path = Path("flows")
    timezone: str = "Asia/Tokyo"
    admin_token: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # Key material of tracked-link tokens; empty = derived from the channel secret.
    link_secret: str = field(default="", repr=False)
    # A link's `on_click` runs at most once per friend and link within this window (every
    # click is still recorded); 0 runs it on every click.
    link_actions_window: timedelta = timedelta(hours=24)
    # Clicks recorded per minute for one friend and link; beyond, `/r/<token>` answers 429.
    link_clicks_per_minute: int = 30
    line_timeout_seconds: float = 5.0
    # Delivery tuning (tests and benchmarks shorten them; production keeps the defaults).
    outbox_lease_seconds: float = 60.0
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    # A sequence step found due more than the grace ago (the worker was down): send | skip.
    late_steps: str = "send"
    late_steps_grace_seconds: float = 3600.0
    # Webhook events: applied off the request by this many threads per process (few: the work
    # is a short transaction and CPU), their replies sent by the send threads (many: a send is
    # waiting for LINE); a process holds what it stored for the lease (then any process's
    # sweep takes it).
    event_threads: int = 4
    event_send_threads: int = 32
    event_lease_seconds: float = 30.0
    event_sweep_seconds: float = 5.0
    event_attempts: int = 5  # a failing event is retried with a backoff, then parked as failed
    # A reply token is used within this many seconds of the event; later answers are pushed
    # (paid) or dropped: push | drop.
    reply_window_seconds: float = 50.0
    late_reply: str = "push"
    plan: str = "free"  # LINE Official Account plan: free | light | standard
    extra_message_yen: float = 3.0  # price of one message beyond the plan (standard only)
    broadcast_batch: int = 5000  # recipients written to the outbox per transaction
    # How often a serve or worker process looks for a catalogue another process reloaded.
    catalogue_check_seconds: float = 1.0
    # The sender's requests per second per endpoint kind, where not LINE's (`DEFAULT_LIMITS`).
    rate_limits: dict[str, float] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        if dotenv and environ is None:
            load_dotenv(Path.cwd() / ".env", override=False)
        env = dict(os.environ if environ is None else environ)
        base = env.get("LINE_API_BASE_URL", "").rstrip("/")
        settings = cls(
            database_url=env.get("DATABASE_URL") or default_database_url(),
            channel_secret=env.get("LINE_CHANNEL_SECRET", ""),
            channel_access_token=env.get("LINE_CHANNEL_ACCESS_TOKEN", ""),
            # The emulator serves both API hosts on one origin, so one variable moves both.
            line_api_base_url=base or LINE_API_DEFAULT,
            line_data_api_base_url=base or LINE_DATA_API_DEFAULT,
            flows_dir=Path(env.get("STEPLINE_FLOWS", "flows")),
            timezone=env.get("STEPLINE_TIMEZONE", "Asia/Tokyo"),
            admin_token=env.get("STEPLINE_ADMIN_TOKEN") or None,
            public_url=env.get("STEPLINE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            link_secret=env.get("STEPLINE_LINK_SECRET", ""),
            link_actions_window=_duration(env, "STEPLINE_LINK_ACTIONS_WINDOW", timedelta(hours=24)),
            link_clicks_per_minute=_count(env, "STEPLINE_LINK_CLICKS_PER_MINUTE", 30),
            line_timeout_seconds=_positive(env, "STEPLINE_LINE_TIMEOUT", 5.0),
            outbox_lease_seconds=_positive(env, "STEPLINE_OUTBOX_LEASE_SECONDS", 60.0),
            retry_base_seconds=_positive(env, "STEPLINE_RETRY_BASE_SECONDS", 2.0),
            retry_cap_seconds=_positive(env, "STEPLINE_RETRY_CAP_SECONDS", 300.0),
            late_steps=env.get("STEPLINE_LATE_STEPS", "send"),
            late_steps_grace_seconds=_positive(env, "STEPLINE_LATE_STEPS_GRACE_SECONDS", 3600.0),
            event_threads=_count(env, "STEPLINE_EVENT_THREADS", 4),
            event_send_threads=_count(env, "STEPLINE_EVENT_SEND_THREADS", 32),
            event_lease_seconds=_positive(env, "STEPLINE_EVENT_LEASE_SECONDS", 30.0),
            event_sweep_seconds=_positive(env, "STEPLINE_EVENT_SWEEP_SECONDS", 5.0),
            event_attempts=_count(env, "STEPLINE_EVENT_ATTEMPTS", 5),
            reply_window_seconds=_positive(env, "STEPLINE_REPLY_WINDOW_SECONDS", 50.0),
            late_reply=env.get("STEPLINE_LATE_REPLY", "push"),
            plan=env.get("STEPLINE_PLAN", "free"),
            extra_message_yen=_positive(env, "STEPLINE_EXTRA_MESSAGE_YEN", 3.0),
            broadcast_batch=int(_positive(env, "STEPLINE_BROADCAST_BATCH", 5000)),
            catalogue_check_seconds=_positive(env, "STEPLINE_CATALOGUE_CHECK_SECONDS", 1.0),
            rate_limits=parse_rate_limits(env.get("STEPLINE_RATE_LIMITS", "")),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.link_secret and len(self.link_secret) < 16:
            raise ConfigError("STEPLINE_LINK_SECRET: use at least 16 characters")
        if self.late_steps not in ("send", "skip"):
            raise ConfigError(f"STEPLINE_LATE_STEPS: send or skip, not {self.late_steps!r}")
        if self.late_reply not in ("push", "drop"):
            raise ConfigError(f"STEPLINE_LATE_REPLY: push or drop, not {self.late_reply!r}")
        if self.reply_window_seconds > 60:
            raise ConfigError("STEPLINE_REPLY_WINDOW_SECONDS: LINE's reply tokens last a minute")
        if self.plan not in ("free", "light", "standard"):
            raise ConfigError(f"STEPLINE_PLAN: free, light or standard, not {self.plan!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"STEPLINE_TIMEZONE: unknown time zone {self.timezone!r}") from exc

    def require_line_credentials(self) -> None:
        """Serving needs both LINE secrets; say which one is missing."""
        missing = [
            name
            for name, value in (
                ("LINE_CHANNEL_SECRET", self.channel_secret),
                ("LINE_CHANNEL_ACCESS_TOKEN", self.channel_access_token),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"missing required setting(s): {', '.join(missing)}")


def _positive(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {raw!r}")
    return value


# The catalogue's duration syntax (`bot.catalogue.durations`, which config may not import).
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _duration(env: dict[str, str], name: str, default: timedelta) -> timedelta:
    """`30m`, `24h`, `7d` (also `90s`, `2w`, `0s`)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    match = _DURATION.match(raw)
    if match is None:
        raise ConfigError(f"{name}: expected a duration such as 30m, 24h or 7d, got {raw!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _count(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {raw!r}")
    return value


def parse_rate_limits(raw: str) -> dict[str, float]:
    """`STEPLINE_RATE_LIMITS`: `kind=requests per second` pairs separated by commas, e.g.
    `multicast=100, push=1000` (kinds: those of `DEFAULT_LIMITS`); empty = LINE's limits.

    Lower is for sharing LINE's limits between processes (two workers: half each); higher
    only helps if LINE has raised a limit, and otherwise earns 429s and retries."""
    name, kinds = "STEPLINE_RATE_LIMITS", ", ".join(DEFAULT_LIMITS)
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        kind, equals, value = (x.strip() for x in part.partition("="))
        if not equals:
            raise ConfigError(f"{name}: expected kind=requests per second, got {part!r}")
        if kind not in DEFAULT_LIMITS:
            raise ConfigError(f"{name}: unknown kind {kind!r} (one of {kinds})")
        if kind in limits:
            raise ConfigError(f"{name}: {kind} is given twice")
        try:
            rate = float(value)
        except ValueError as exc:
            raise ConfigError(
                f"{name}: {kind}: expected requests per second, got {value!r}"
            ) from exc
        if not rate > 0 or rate == float("inf"):
            raise ConfigError(f"{name}: {kind}: must be a positive number, got {value!r}")
        limits[kind] = rate
    return limits


def default_database_url() -> str:
    instance = Path.cwd() / "instance"
    return f"sqlite:///{instance / 'stepline.db'}"
