"""Helpers shared by the `stepline` commands: settings, the runtime, errors, JSON options.

Light on purpose (stdlib, click and `bot.config` only): every command module imports it, and
`stepline --help` imports every command module. What is heavy is imported when called.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bot.config import ConfigError, Settings

if TYPE_CHECKING:
    from bot.runtime import Runtime


def settings_or_exit() -> Settings:
    """The settings from the environment, or a clear exit naming the bad one."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def configure_process_logging(settings: Settings) -> None:
    """Log as the bot does (INFO, secrets scrubbed): for the commands that run its work."""
    from bot.logging_setup import configure_logging

    configure_logging(settings)


def process_settings_or_exit() -> Settings:
    """The settings of a long-running process that talks to LINE (`serve`, `worker`): read,
    logging set up, LINE's credentials required; a clear exit otherwise."""
    settings = settings_or_exit()
    configure_process_logging(settings)
    try:
        settings.require_line_credentials()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return settings


def runtime_or_exit() -> Runtime:
    """The runtime, or a clear exit if the settings or the catalogue are broken."""
    from bot.catalogue.catalogue import CatalogueError
    from bot.runtime import Runtime

    runtime = Runtime(settings_or_exit())
    try:
        runtime.catalogue  # noqa: B018 - load it now, to report problems before anything runs
    except CatalogueError as exc:
        runtime.close()
        fail("the catalogue has problems (fix them, then retry):", [str(p) for p in exc.problems])
    return runtime


def fail(message: str, details: list[Any] | None = None) -> NoReturn:
    """Print `error: message` (and each detail) on stderr and exit with status 1."""
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[red]error:[/red] {message}")
    for detail in details or []:
        console.print(f"  {detail}")
    sys.exit(1)


def json_option(value: str, what: str) -> Any:
    """An option's JSON value; for a `segment`, a bare word is a segment's name."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if what == "segment" and value and not value.lstrip().startswith(("{", "[")):
            return value  # a segment's name
        raise click.BadParameter(f'{what} must be JSON (e.g. \'{{"tag": "女性"}}\')') from None
