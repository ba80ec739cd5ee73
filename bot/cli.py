"""The `stepline` command (one console script; Flask's CLI group underneath)."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import FlaskGroup

from bot.config import ConfigError, Settings


def _create_app() -> Any:
    from bot.app import create_app

    # Every command loads the app first (Flask's CLI), so a bad setting surfaces here: say
    # which one and why, without a traceback.
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(
    cls=FlaskGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=True,
    help="stepline: questionnaires, tags and messages for a LINE Official Account, as code.\n\n"
    "Configuration comes from the environment (and a .env file): DATABASE_URL, "
    "LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL, STEPLINE_FLOWS, "
    "STEPLINE_TIMEZONE, STEPLINE_ADMIN_TOKEN, STEPLINE_PUBLIC_URL.",
)
@click.version_option(package_name="stepline")
def main() -> None:
    """Entry point of the `stepline` console script."""


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
@click.option(
    "--no-analyze",
    is_flag=True,
    help="Skip refreshing the query planner's statistics (ANALYZE) after migrating.",
)
def db_upgrade(revision: str, no_analyze: bool) -> None:
    """Create or migrate the database at DATABASE_URL to the latest schema, then refresh the
    planner's statistics (ANALYZE) so segment counts use the right indexes. Run it after every
    upgrade of stepline and after large imports."""
    from storage.migrate import analyze, upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {_safe_url(settings.database_url)} is at revision {revision}")
    if not no_analyze:
        analyze(settings.database_url)
        click.echo("planner statistics refreshed (ANALYZE)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the webhook bot and admin API under gunicorn (SIGHUP reloads the flows)."""
    from bot.catalogue import CatalogueError
    from bot.catalogue.loader import load_catalogue
    from bot.serving import run_gunicorn

    settings = settings_or_exit()
    try:
        settings.require_line_credentials()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        load_catalogue(settings.flows_dir)
    except CatalogueError as exc:
        click.echo(str(exc), err=True)
        raise click.ClickException(
            f"the catalogue in {settings.flows_dir} has problems; fix them (stepline check)"
        ) from exc
    run_gunicorn(host=host, port=port, workers=workers, threads=threads)


@main.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Run what is due now (steps, broadcasts, sends, timeouts) and exit.",
)
@click.option("--batch", default=200, show_default=True, help="Rows claimed per tick.")
@click.option("--threads", default=8, show_default=True, help="Concurrent sends.")
@click.option(
    "--tick",
    default=1.0,
    show_default=True,
    help="Seconds between ticks (delivery, sequence steps, broadcasts); a step or broadcast "
    "due between two ticks starts at its moment.",
)
def worker(once: bool, batch: int, threads: int, tick: float) -> None:
    """Run due sequence steps and broadcasts, send due messages (retries with the same retry
    key) and abandon timed-out flows.

    Safe to run several at once (on PostgreSQL they share the work with SKIP LOCKED); never
    run it inside the web processes. Sends are paced at LINE's rate limits per endpoint;
    each worker paces its own, so with several workers give each its share in
    STEPLINE_RATE_LIMITS (e.g. two workers: multicast=100,push=1000)."""
    from rich.console import Console

    from bot.runtime import Runtime
    from bot.scheduler import run_worker

    settings = settings_or_exit()
    try:
        settings.require_line_credentials()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    runtime = Runtime(settings)
    try:
        run_worker(
            runtime, once=once, batch=batch, threads=threads, tick_seconds=tick, console=Console()
        )
    finally:
        runtime.close()


@main.command("friends")
@click.option("--tag", default=None, help="Only friends with this tag.")
@click.option("--limit", default=50, show_default=True, type=int)
def friends(tag: str | None, limit: int) -> None:
    """List friends with their tags and where they are in a flow."""
    from rich.console import Console
    from rich.table import Table

    from bot.api.friends import list_friends
    from bot.runtime import Runtime

    runtime = Runtime(settings_or_exit())
    args = {"limit": str(limit)} | ({"tag": tag} if tag else {})
    page = list_friends(runtime, args)
    table = Table(title=f"{page['total']} friend(s)" + (f" tagged {tag}" if tag else ""))
    for column in ("LINE user id", "name", "status", "tags", "flow/state"):
        table.add_column(column)
    for item in page["friends"]:
        conv = item["conversation"]
        table.add_row(
            item["line_user_id"],
            item["display_name"],
            item["status"],
            ", ".join(item["tags"]),
            f"{conv['flow']}/{conv['state']}" if conv else "",
        )
    Console().print(table)
    runtime.close()


def _register_optional() -> None:
    """Commands that live next to their modules."""
    from bot.catalogue.cli import check_command, diagram_command, schema_command
    from bot.demo import demo_command
    from bot.emulator.cli import chat_command, emulator_command
    from bot.reach_cli import audience_group, broadcast_group, segment_group
    from bot.richmenus.cli import richmenu_group

    main.add_command(check_command, "check")
    main.add_command(diagram_command, "diagram")
    main.add_command(schema_command, "schema")
    main.add_command(emulator_command, "emulator")
    main.add_command(chat_command, "chat")
    main.add_command(demo_command, "demo")
    main.add_command(segment_group, "segment")
    main.add_command(broadcast_group, "broadcast")
    main.add_command(audience_group, "audience")
    main.add_command(richmenu_group, "richmenu")


_register_optional()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
