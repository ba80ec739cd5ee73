"""The template language of the YAML: Jinja2 in a sandbox, with stepline's date filters.

Which text is a template, and the environment both `stepline check` (does it parse, which
filters exist) and the engine (`bot.engine.templates`, rendering per friend) use."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from bot.catalogue.explain import suggest

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


@dataclass(frozen=True)
class TemplateCheck:
    """Whether a template compiles (`problem`: why not) and the links it names."""

    problem: str | None
    links: tuple[str, ...] = ()


def check_template(env: SandboxedEnvironment, text: str) -> TemplateCheck:
    """Compile `text` as a template in `env`: a syntax error or an unknown filter is a
    problem (a template that fails renders empty, so it must be caught on the way in);
    `link('id')` calls with a literal id are listed for the caller to check."""
    if not contains_template(text):
        return TemplateCheck(None)
    try:
        tree = env.parse(text)
        env.compile(tree)
    except TemplateSyntaxError as exc:
        line = f" (line {exc.lineno} of the text)" if "\n" in text.strip() else ""
        message = exc.message or "syntax error"
        unknown_filter = re.match(r"No filter named '(.+)'", message)
        if unknown_filter:
            name = unknown_filter.group(1)
            message = f"unknown filter '{name}'{suggest(name, sorted(env.filters))}"
        return TemplateCheck(f"template error: {message.rstrip('.')}{line}")
    links = []
    for call in tree.find_all(nodes.Call):
        target = call.node
        if isinstance(target, nodes.Name) and target.name == "link" and call.args:
            first = call.args[0]
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                links.append(first.value)
    return TemplateCheck(None, tuple(links))


def message_template_problems(
    message: Any, env: SandboxedEnvironment, links: Collection[str]
) -> list[str]:
    """Every template of a message in its YAML/JSON form that does not compile or names a
    link `links` lacks, as `path: problem` (flex `contents` are LINE's JSON, not templates)."""
    problems: list[str] = []
    stack: list[tuple[Any, str]] = [(message, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not (key == "contents" and path.endswith("flex")):
                    stack.append((value, f"{path}.{key}" if path else str(key)))
        elif isinstance(node, list):
            stack.extend((value, f"{path}.{i}") for i, value in enumerate(node))
        elif isinstance(node, str):
            checked = check_template(env, node)
            if checked.problem is not None:
                problems.append(f"{path}: {checked.problem}")
            problems.extend(
                f"{path}: unknown link '{name}'{suggest(name, sorted(links))}"
                for name in checked.links
                if name not in links
            )
    return sorted(problems)
