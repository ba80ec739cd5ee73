"""The template language of the YAML: Jinja2 in a sandbox, with stepline's date filters.

Which text is a template, and the environment both `stepline check` (does it parse, which
filters exist) and the engine (`bot.engine.templates`, rendering per friend) use."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_MARKS = ("{{", "{%", "{#")


def contains_template(text: Any) -> bool:
    """True if `text` (or a JSON dump of messages) is a string with Jinja syntax: its output
    may differ per friend, so it cannot be sent to many friends as one multicast."""
    return isinstance(text, str) and any(mark in text for mark in TEMPLATE_MARKS)


def _local(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz)
        except ValueError:
            return value
    return value


def make_environment(tz: ZoneInfo) -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)

    def hm(value: Any) -> str:
        local = _local(value, tz)
        return local.strftime("%H:%M") if isinstance(local, datetime) else str(value)

    def ymd(value: Any) -> str:
        local = _local(value, tz)
        if isinstance(local, datetime | date):
            return f"{local.year}年{local.month}月{local.day}日"
        return str(value)

    def md(value: Any) -> str:
        local = _local(value, tz)
        if isinstance(local, datetime | date):
            return f"{local.month}月{local.day}日"
        return str(value)

    def ymdhm(value: Any) -> str:
        local = _local(value, tz)
        if isinstance(local, datetime):
            return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        return ymd(value)

    env.filters.update(hm=hm, ymd=ymd, md=md, ymdhm=ymdhm)
    return env
