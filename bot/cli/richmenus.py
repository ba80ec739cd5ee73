"""`stepline richmenu sync|render|list`: rich menus from the catalogue to LINE."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.common import fail, make_console, runtime_or_exit


@click.group("richmenu")
def richmenu_group() -> None:
    """Rich menus (リッチメニュー) defined in YAML: draw, create at LINE, link to friends."""


@richmenu_group.command("sync")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing at LINE or here.")
def richmenu_sync(dry_run: bool) -> None:
    """Create, update and delete rich menus at LINE so they match the catalogue.

    Prints the plan first. Unchanged menus are left alone (a second sync does nothing);
    a changed menu is created anew, its alias and the default moved to it, every friend on
    it re-linked in bulk, and the old one deleted. Friends whose `show_when` choice changed
    are re-linked too."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from bot.line.client import LineError
    from bot.services.richmenu_sync import HOURLY_LIMIT, RichMenuSync

    runtime = runtime_or_exit()
    console = make_console()
    try:
        sync = RichMenuSync(runtime)
        try:
            plan = sync.plan()
        except LineError as exc:
            fail(f"cannot read the rich menus at LINE: {exc}")
        for line in plan.describe():
            console.print(f"  {line}")
        if not runtime.catalogue.rich_menus:
            console.print("the catalogue has no rich_menu documents")
        if plan.changes_at_line > HOURLY_LIMIT:
            console.print(
                f"[yellow]note:[/yellow] {plan.changes_at_line} creations/deletions; LINE allows"
                f" {HOURLY_LIMIT} an hour, so sync will wait when LINE says to"
            )
        if dry_run:
            console.print("dry run: nothing changed")
            return
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("creating menus at LINE", total=None)
            sync.progress = lambda done, total: progress.update(
                task, description="bulk link requests", completed=done, total=total
            )
            try:
                result = sync.apply(plan)
            except LineError as exc:
                fail(f"LINE refused: {exc} (run sync again: it continues where it stopped)")
        console.print(
            f"{result.relinked} friend(s) re-linked; {len(result.deleted)} old menu(s) deleted"
        )
        if result.unsent:
            console.print(
                f"[yellow]{result.unsent} link request(s) will be retried by `stepline worker`;"
                " old menus are deleted by the next sync once they are done[/yellow]"
            )
    finally:
        runtime.close()


@richmenu_group.command("render")
@click.argument("name", required=False)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the PNG files (default: richmenus/ in the flows folder).",
)
@click.option("--force", is_flag=True, help="Overwrite image files that already exist.")
def richmenu_render(name: str | None, out: Path | None, force: bool) -> None:
    """Draw the image of every menu without `image:` (or of NAME) from its area labels.

    The file is written as <out>/<menu>.png; put `image: richmenus/<menu>.png` in the YAML
    to use and edit it, or leave `image` out and sync draws the same picture itself. An
    existing file (perhaps a designer's edit) is never replaced without --force."""

    from bot.catalogue.richmenu_definition import menu_image

    runtime = runtime_or_exit()
    try:
        catalogue = runtime.catalogue
        menus = catalogue.rich_menus
        if name is not None and name not in menus:
            fail(f"unknown rich menu '{name}' (known: {', '.join(menus) or 'none'})")
        chosen = (
            [menus[name]] if name is not None else [m for m in menus.values() if m.image is None]
        )
        if not chosen:
            make_console().print("every rich menu has its own image; nothing to draw")
            return
        folder = out or Path(catalogue.folder or ".") / "richmenus"
        targets = [folder / f"{menu.rich_menu}.png" for menu in chosen]
        existing = [str(path) for path in targets if path.exists()]
        if existing and not force:
            fail(f"{', '.join(existing)} already exist(s); --force overwrites")
        folder.mkdir(parents=True, exist_ok=True)
        for menu in chosen:
            image = menu_image(menu.model_copy(update={"image": None}), catalogue.folder)
            path = folder / f"{menu.rich_menu}.png"
            path.write_bytes(image.data)
            width, height = menu.pixels
            make_console().print(f"{path} ({width}×{height}, {len(image.data):,} bytes)")
    finally:
        runtime.close()


@richmenu_group.command("list")
def richmenu_list() -> None:
    """The catalogue's menus: their LINE id, alias, rule and how many friends see each."""
    from rich.table import Table
    from sqlalchemy import func, select

    from bot.services.richmenu_sync import pending_links
    from storage.models import Friend, FriendStatus, RichMenuStatus, RichMenuVersion

    runtime = runtime_or_exit()
    try:
        with runtime.db.read() as session:
            active = {
                v.name: v.line_id
                for v in session.scalars(
                    select(RichMenuVersion).where(RichMenuVersion.status == RichMenuStatus.ACTIVE)
                )
            }
            counts = dict(
                session.execute(
                    select(Friend.rich_menu, func.count())
                    .where(Friend.status == FriendStatus.FOLLOWING)
                    .group_by(Friend.rich_menu)
                ).all()
            )
        table = Table("menu", "LINE id", "alias", "shown when", "friends")
        for menu_name, menu in runtime.catalogue.rich_menus.items():
            rule = "default" if menu.default else ("rule" if menu.show_when else "-")
            friends = counts.get(menu_name, 0) + (counts.get(None, 0) if menu.default else 0)
            table.add_row(
                menu_name,
                active.get(menu_name, "(not synced)"),
                menu.alias or "-",
                rule,
                str(friends),
            )
        make_console().print(table)
        waiting = pending_links(runtime)
        if waiting:
            make_console().print(
                f"{waiting} rich menu link request(s) waiting for `stepline worker`"
            )
    finally:
        runtime.close()
