"""Message templates: Jinja2 in a sandbox, over plain values only."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Template, meta

from bot.catalogue.templates import contains_template, make_environment

if TYPE_CHECKING:
    from bot.engine.link_tokens import LinkTokens

log = logging.getLogger(__name__)


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
        if not contains_template(text):
            return text
        try:
            template, names = self._compile(text)
            return template.render(**values(names), link=link)
        except Exception as exc:  # a bad template must never fail the whole event
            log.warning("template failed (%s): %r", exc, text[:80])
            # Nothing left around the failed parts: an empty text, which the turn drops
            # (`fit_rendered`), never the raw Jinja.
            return _TEMPLATE_PART.sub("", text).strip()


_TEMPLATE_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
