"""Settings from the environment: `STEPLINE_RATE_LIMITS` and the tracked-link settings parsed,
bad values refused clearly, the catalogue check interval."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from bot.catalogue.durations import parse_duration
from bot.cli import main
from bot.config import ConfigError, Settings


def settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv=False)


def test_rate_limits_default_to_lines() -> None:
    assert settings().rate_limits == {}


def test_rate_limits_are_read_per_kind() -> None:
    limits = settings(STEPLINE_RATE_LIMITS=" multicast=100, push = 1000.5 ,").rate_limits
    assert limits == {"multicast": 100.0, "push": 1000.5}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("multicast", "expected kind=requests per second, got 'multicast'"),
        ("broadcast=1", "unknown kind 'broadcast' (one of push, reply, multicast, richmenu)"),
        ("push=fast", "push: expected requests per second, got 'fast'"),
        ("push=0", "push: must be a positive number, got '0'"),
        ("push=-5", "push: must be a positive number, got '-5'"),
        ("push=nan", "push: must be a positive number, got 'nan'"),
        ("push=inf", "push: must be a positive number, got 'inf'"),
        ("push=5,push=6", "push is given twice"),
    ],
)
def test_bad_rate_limits_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(STEPLINE_RATE_LIMITS=raw)
    assert str(error.value) == f"STEPLINE_RATE_LIMITS: {message}"


def test_the_worker_will_not_start_with_bad_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPLINE_RATE_LIMITS", "multicast=lots")
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 1
    assert "STEPLINE_RATE_LIMITS: multicast: expected requests per second, got 'lots'" in (
        result.output
    )


def test_link_settings_default_to_a_day_and_30_clicks_a_minute() -> None:
    assert settings().link_actions_window == timedelta(hours=24)
    assert settings().link_clicks_per_minute == 30
    read = settings(STEPLINE_LINK_ACTIONS_WINDOW="7d", STEPLINE_LINK_CLICKS_PER_MINUTE="5")
    assert (read.link_actions_window, read.link_clicks_per_minute) == (timedelta(days=7), 5)
    assert settings(STEPLINE_LINK_ACTIONS_WINDOW="0s").link_actions_window == timedelta(0)


@pytest.mark.parametrize("raw", ["30m", " 24h ", "7d", "90s", "2w", "0s", "1 h"])
def test_link_window_is_written_as_catalogue_durations(raw: str) -> None:
    assert settings(STEPLINE_LINK_ACTIONS_WINDOW=raw).link_actions_window == parse_duration(raw)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("STEPLINE_LINK_ACTIONS_WINDOW", "1 day", "expected a duration such as 30m, 24h or 7d"),
        ("STEPLINE_LINK_ACTIONS_WINDOW", "-1h", "expected a duration such as 30m, 24h or 7d"),
        ("STEPLINE_LINK_CLICKS_PER_MINUTE", "0", "must be positive, got '0'"),
        ("STEPLINE_LINK_CLICKS_PER_MINUTE", "2.5", "expected a whole number, got '2.5'"),
    ],
)
def test_bad_link_settings_are_refused(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{name}: {message}")):
        settings(**{name: raw})


def test_the_catalogue_check_interval_is_read_and_must_be_positive() -> None:
    assert settings().catalogue_check_seconds == 1.0
    assert settings(STEPLINE_CATALOGUE_CHECK_SECONDS="0.25").catalogue_check_seconds == 0.25
    with pytest.raises(ConfigError, match="STEPLINE_CATALOGUE_CHECK_SECONDS: must be positive"):
        settings(STEPLINE_CATALOGUE_CHECK_SECONDS="0")
