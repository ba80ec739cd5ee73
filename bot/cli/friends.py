"""`stepline friends`: friends, their tags and where they are in a flow."""

from __future__ import annotations

import click

from bot.cli.common import (
    configure_command_logging,
    database_ready_or_exit,
    fail,
    make_console,
    settings_or_exit,
)


@click.command("friends")
@click.option("--tag", default=None, help="Only friends with this tag.")
@click.option("--limit", default=50, show_default=True, type=int)
def friends(tag: str | None, limit: int) -> None:
    """List friends with their tags and where they are in a flow."""
    from rich.table import Table

    from bot.runtime import Runtime
    from bot.services.errors import ServiceError
    from bot.services.friends import list_friends

    settings = settings_or_exit()
    configure_command_logging(settings)
    database_ready_or_exit(settings)
    runtime = Runtime(settings)
    args = {"limit": str(limit)} | ({"tag": tag} if tag else {})
    try:
        page = list_friends(runtime, args)
    except ServiceError as exc:
        runtime.close()
        fail(exc.message, exc.details)
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
    make_console().print(table)
    runtime.close()
