"""`stepline db upgrade`: create or migrate the database schema."""

from __future__ import annotations

import click

from bot.cli.common import configure_command_logging, settings_or_exit


@click.group("db")
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
    configure_command_logging(settings)
    upgrade(settings.database_url, revision)
    click.echo(f"database at {_safe_url(settings.database_url)} is at revision {revision}")
    if not no_analyze:
        analyze(settings.database_url)
        click.echo("planner statistics refreshed (ANALYZE)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
