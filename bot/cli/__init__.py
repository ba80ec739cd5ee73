"""The `stepline` command: one console script, each command loaded only when it is needed.

`stepline --help` and `stepline check` must not pay for the LINE SDK, SQLAlchemy or the web
app: the group below knows its commands as "module:attribute" and imports a command's module
when that command is asked for; the modules themselves import their heavy parts inside the
commands.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name → "module:attribute" of each command (a click command or group).
COMMANDS: dict[str, str] = {
    "db": "bot.cli.db:db_group",
    "serve": "bot.cli.processes:serve",
    "worker": "bot.cli.processes:worker",
    "friends": "bot.cli.friends:friends",
    "events": "bot.cli.events:events_group",
    "check": "bot.cli.catalogue:check_command",
    "diagram": "bot.cli.catalogue:diagram_command",
    "schema": "bot.cli.catalogue:schema_command",
    "emulator": "bot.cli.emulator:emulator_command",
    "chat": "bot.cli.emulator:chat_command",
    "demo": "bot.cli.demo:demo_command",
    "segment": "bot.cli.reach:segment_group",
    "broadcast": "bot.cli.reach:broadcast_group",
    "audience": "bot.cli.reach:audience_group",
    "richmenu": "bot.cli.richmenus:richmenu_group",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from `lazy_commands` when first looked up."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    help="stepline: questionnaires, tags and messages for a LINE Official Account, as code.\n\n"
    "Configuration comes from the environment (and a .env file): DATABASE_URL, "
    "LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL, STEPLINE_FLOWS, "
    "STEPLINE_TIMEZONE, STEPLINE_ADMIN_TOKEN, STEPLINE_PUBLIC_URL.",
)
@click.version_option(package_name="stepline")
def main() -> None:
    """Entry point of the `stepline` console script."""
    # Before any command parses its options, so a .env applies to every command (and to
    # options read from the environment); the environment wins. Like Flask's CLI before it,
    # the nearest .env from the working directory upwards.
    from dotenv import find_dotenv, load_dotenv

    found = find_dotenv(usecwd=True)
    if found:
        load_dotenv(found, override=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
