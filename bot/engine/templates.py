"""Message templates: Jinja2 in a sandbox, over plain values only."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Template, meta
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    from bot.links import LinkTokens

log = logging.getLogger(__name__)

TEMPLATE_MARKS = ("{{", "{%", "{#")


def contains_template(text: str) -> bool:
    """True if `text` (or a JSON dump of messages) has Jinja syntax: its output may differ
    per friend, so it cannot be sent to many friends as one multicast."""
    return any(mark in text for mark in TEMPLATE_MARKS)


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


class Templates:
    """Renders template text against a friend's values; a failed render never sends raw Jinja."""

    def __init__(self, tz: ZoneInfo, links: LinkTokens | None = None) -> None:
        self.env = make_environment(tz)
        self.links = links  # makes the tracked URLs `link('id')` renders; None = untracked
        self._compile = lru_cache(maxsize=2048)(self._prepare)

    def _prepare(self, text: str) -> tuple[Template, frozenset[str]]:
        """The compiled template and the top-level names it reads (besides `link`)."""
        tree = self.env.parse(text)
        names = frozenset(meta.find_undeclared_variables(tree)) - {"link"}
        return self.env.from_string(tree), names

    def render(
        self,
        text: str,
        values: Callable[[frozenset[str]], dict[str, Any]],
        link: Callable[[str], str],
    ) -> str:
        """Render `text`. `values(names)` is only called when the text is a template at all,
        with the names it reads: a friend's fields, tags and answers are each a query, and
        a step's `{{ fields.会員番号 }}` needs only one of them."""
        if "{{" not in text and "{%" not in text:
            return text
        try:
            template, names = self._compile(text)
            return template.render(**values(names), link=link)
        except Exception as exc:  # a bad template must never fail the whole event
            log.warning("template failed (%s): %r", exc, text[:80])
            return _TEMPLATE_PART.sub("", text).strip() or text


_TEMPLATE_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
