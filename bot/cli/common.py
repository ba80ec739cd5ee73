"""Helpers shared by the `stepline` commands: settings, the runtime, errors, JSON options.

Light on purpose (stdlib, click and `bot.config` only): every command module imports it, and
`stepline --help` imports every command module. What is heavy is imported when called.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bot.config import ConfigError, Settings, default_database_url

if TYPE_CHECKING:
    from rich.console import Console

    from bot.emulator.http_server import ServerThread
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


def configure_command_logging(settings: Settings) -> None:
    """A one-shot command logs warnings and errors only (secrets scrubbed): what it prints is
    its answer. `STEPLINE_LOG_LEVEL=INFO` shows the rest."""
    from bot.logging_setup import configure_logging

    configure_logging(settings, default_level="WARNING")


def make_console(*, stderr: bool = False) -> Console:
    """A rich console that wraps only for a terminal: piped into a file or a log, lines (and
    the URLs in them) stay whole."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, soft_wrap=True, width=max(probe.width, 200))


def process_settings_or_exit() -> Settings:
    """The settings of a long-running process that talks to LINE (`serve`, `worker`): read,
    logging set up, LINE's credentials required; a clear exit otherwise."""
    settings = settings_or_exit()
    configure_process_logging(settings)
    try:
        settings.require_line_credentials()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    database_ready_or_exit(settings)
    return settings


def database_ready_or_exit(settings: Settings) -> None:
    """Exit with what to do when the database is missing, unreachable or not migrated, before
    anything opens it (no traceback, no empty database file left behind)."""
    from storage.migrate import schema_problem

    problem = schema_problem(settings.database_url)
    if problem is None:
        return
    details = ["run `stepline db upgrade` to create it (or set DATABASE_URL to the one you mean)"]
    demo = Path("instance") / "demo.db"
    if settings.database_url == default_database_url() and demo.is_file():
        details.append(
            "the demo keeps its data in instance/demo.db: to look at it, run the command with "
            "DATABASE_URL=sqlite:///instance/demo.db"
        )
    fail(problem, details)


def runtime_or_exit() -> Runtime:
    """The runtime, or a clear exit if the settings or the catalogue are broken."""
    from bot.catalogue.catalogue import CatalogueError
    from bot.runtime import Runtime

    settings = settings_or_exit()
    configure_command_logging(settings)
    database_ready_or_exit(settings)
    runtime = Runtime(settings)
    try:
        runtime.catalogue  # noqa: B018 - load it now, to report problems before anything runs
    except CatalogueError as exc:
        runtime.close()
        fail("the catalogue has problems (fix them, then retry):", [str(p) for p in exc.problems])
    return runtime


def serve_or_exit(app: Any, *, port: int, option: str, host: str = "127.0.0.1") -> ServerThread:
    """Serve `app` on a background thread, or exit saying the port is taken and which option
    picks another (never an `OSError` traceback)."""
    import errno

    from bot.emulator.http_server import ServerThread

    try:
        return ServerThread(app, host=host, port=port).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} is in use; choose another with {option}")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, so the command stops
    cleanly on either, even when it was started with SIGINT ignored (a shell's background
    job, `nohup`), where Python installs no handler of its own."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        # Once: a second signal (a terminal's Ctrl-C and a forwarded one arriving together)
        # must not break into the clean stop that the first one started.
        for which in (signal.SIGINT, signal.SIGTERM):
            signal.signal(which, signal.SIG_IGN)
        raise KeyboardInterrupt

    for which in (signal.SIGINT, signal.SIGTERM):
        signal.signal(which, interrupt)


def fail(message: str, details: list[Any] | None = None) -> NoReturn:
    """Print `error: message` (and each detail) on stderr and exit with status 1."""
    err = make_console(stderr=True)
    err.print(f"[red]error:[/red] {message}")
    for detail in details or []:
        err.print(f"  {detail}")
    sys.exit(1)


def json_option(value: str, what: str) -> Any:
    """An option's JSON value; for a `segment`, a bare word is a segment's name."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if what == "segment" and value and not value.lstrip().startswith(("{", "[")):
            return value  # a segment's name
        raise click.BadParameter(f'{what} must be JSON (e.g. \'{{"tag": "女性"}}\')') from None
