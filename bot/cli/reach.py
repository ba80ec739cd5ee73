"""`stepline segment`, `stepline broadcast` and `stepline audience`: reach, cost and sends
from the command line, on the same functions as the admin API."""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.common import fail, json_option, make_console, runtime_or_exit

if TYPE_CHECKING:
    from rich.console import Console

    from bot.runtime import Runtime
    from storage.models import OutboxMessage


# ------------------------------------------------------------------ segment


@click.group("segment")
def segment_group() -> None:
    """Count and preview who a condition reaches, and what sending to them costs."""


def _reach(condition: str, sample: int) -> None:
    from rich.table import Table

    from bot.services.errors import ServiceError
    from bot.services.reach import reach

    runtime = runtime_or_exit()
    try:
        result = reach(runtime, {"segment": json_option(condition, "segment")}, sample=sample)
    except ServiceError as exc:
        fail(exc.message, exc.details)
    finally:
        runtime.close()
    console = make_console()
    cost = result["cost"]
    console.print(f"[bold]{result['count']:,}[/bold] friend(s) match (blocked friends excluded)")
    quota = "unlimited" if cost["quota"] is None else f"{cost['quota']:,}"
    used = "unknown" if cost["used"] is None else f"{cost['used']:,}"
    console.print(
        f"cost: {cost['messages']:,} message(s); plan {cost['plan']}: quota {quota}, "
        f"used {used} this month"
        + (f", ¥{cost['extra_yen']:,} extra" if cost.get("extra_yen") else "")
    )
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if result["sample"]:
        table = Table("user id", "name", "followed at")
        for friend in result["sample"]:
            table.add_row(
                friend["line_user_id"], friend["display_name"], friend["followed_at"] or ""
            )
        console.print(table)


@segment_group.command("count")
@click.argument("condition")
def segment_count(condition: str) -> None:
    """How many friends CONDITION (JSON, or a segment's name) reaches, and the cost.

    Example: stepline segment count '{"all": [{"tag": "女性"}, {"not": {"tag": "購入済み"}}]}'"""
    _reach(condition, 0)


@segment_group.command("preview")
@click.argument("condition")
@click.option("--sample", default=10, show_default=True, type=click.IntRange(1, 100))
def segment_preview(condition: str, sample: int) -> None:
    """Like `count`, with a sample of the friends it reaches."""
    _reach(condition, sample)


# ------------------------------------------------------------------ broadcast


@click.group("broadcast")
def broadcast_group() -> None:
    """Send a message to a segment now or at a time; follow, list and cancel broadcasts."""


@broadcast_group.command("send")
@click.argument("name", required=False)
@click.option("--segment", "segment", default=None, help="Condition as JSON, or a segment name.")
@click.option("--text", "texts", multiple=True, help="A text message (repeatable, up to 5).")
@click.option("--messages", "messages_json", default=None, help="Message objects as JSON.")
@click.option(
    "--at", "send_at", default=None, help="ISO 8601 time (account time zone if no offset)."
)
@click.option(
    "--dry-run", is_flag=True, help="Freeze the audience and plan every send; send nothing."
)
@click.option("--no-wait", is_flag=True, help="Only plan it; `stepline worker` sends it.")
def broadcast_send(
    name: str | None,
    segment: str | None,
    texts: tuple[str, ...],
    messages_json: str | None,
    send_at: str | None,
    dry_run: bool,
    no_wait: bool,
) -> None:
    """Send the catalogue's `broadcast:` document NAME, or --segment with --text/--messages.

    Unless it is for later (--at) or --no-wait, it is sent now with a progress bar (a
    `stepline worker` running at the same time leaves it to this command).

    Example: stepline broadcast send --segment '{"tag": "女性"}' --text 冬のご案内 --dry-run"""

    from bot.services.broadcasts import create_from_catalogue, plan_broadcast
    from bot.services.errors import ServiceError

    if (name is None) == (segment is None):
        raise click.UsageError("give either a broadcast NAME from the catalogue or --segment")
    runtime = runtime_or_exit()
    try:
        if name is not None:
            if texts or messages_json or send_at:
                raise click.UsageError(
                    "NAME sends the document as written: no --text/--messages/--at"
                )
            planned = create_from_catalogue(runtime, name, dry_run=dry_run)
        else:
            messages: list[Any] = [{"text": t} for t in texts]
            if messages_json:
                extra = json_option(messages_json, "messages")
                messages += extra if isinstance(extra, list) else [extra]
            planned = plan_broadcast(
                runtime,
                segment=json_option(segment or "", "segment"),
                messages=messages,
                send_at=send_at,
                dry_run=dry_run,
            )
    except ServiceError as exc:
        runtime.close()
        fail(exc.message, exc.details)
    console = make_console()
    row = planned.row
    console.print(f"broadcast {row.id}: {row.status}, send at {row.send_at.isoformat()}")
    for warning in planned.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if send_at is None and not no_wait:
        _send_now(runtime, row.id, console)
    runtime.close()


def _send_now(runtime: Runtime, broadcast_id: int, console: Console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from bot.services.broadcasts import Runner, broadcast_status

    pending: list[Future[Any]] = []
    with ThreadPoolExecutor(8, thread_name_prefix="send") as pool:

        def send(rows: list[OutboxMessage]) -> list[Future[Any]]:
            futures = [pool.submit(runtime.sender.attempt, row) for row in rows]
            pending.extend(futures)
            return futures

        runner = Runner(runtime, send)
        if not runner.claim(broadcast_id):
            console.print("a worker has already taken it; follow it with `broadcast status`")
            return
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"broadcast {broadcast_id}", total=None)

            def update(_id: int, step: Any) -> None:
                progress.update(task, completed=step.queued, total=step.planned)

            runner.run(broadcast_id, update)
            wait(pending)
        runner.run_due()  # marks it done once every row has its outcome
    _print_status(console, broadcast_status(runtime, broadcast_id))


def _print_status(console: Console, status: dict[str, Any]) -> None:
    console.print(
        f"broadcast {status['id']}: [bold]{status['status']}[/bold]"
        + (" (dry run)" if status["dry_run"] else "")
        + f" — planned {status['planned'] if status['planned'] is not None else '-'}, "
        f"accepted {status['accepted']}, failed {status['failed']}, "
        f"pending {status['pending']}, cancelled {status['cancelled']}"
    )


@broadcast_group.command("status")
@click.argument("broadcast_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def broadcast_status_command(broadcast_id: int, as_json: bool) -> None:
    """Where a broadcast stands: planned, accepted, failed, pending."""

    from bot.services.broadcasts import broadcast_status
    from bot.services.errors import ServiceError

    runtime = runtime_or_exit()
    try:
        status = broadcast_status(runtime, broadcast_id)
    except ServiceError as exc:
        fail(exc.message)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False, indent=2))
    else:
        _print_status(make_console(), status)


@broadcast_group.command("cancel")
@click.argument("broadcast_id", type=int)
def broadcast_cancel(broadcast_id: int) -> None:
    """Stop what is not yet sent (rows already in flight still finish)."""

    from bot.services.broadcasts import cancel_broadcast
    from bot.services.errors import ServiceError

    runtime = runtime_or_exit()
    try:
        status = cancel_broadcast(runtime, broadcast_id)
    except ServiceError as exc:
        fail(exc.message)
    finally:
        runtime.close()
    _print_status(make_console(), status)


@broadcast_group.command("list")
@click.option("--limit", default=20, show_default=True, type=int)
def broadcast_list(limit: int) -> None:
    """The latest broadcasts."""
    from rich.table import Table

    from bot.services.broadcasts import list_broadcasts

    runtime = runtime_or_exit()
    try:
        rows = list_broadcasts(runtime, limit)
    finally:
        runtime.close()
    table = Table("id", "status", "send at", "planned", "accepted", "failed")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["status"] + (" (dry run)" if row["dry_run"] else ""),
            row["send_at"],
            str(row["planned"] if row["planned"] is not None else "-"),
            str(row["accepted"]),
            str(row["failed"]),
        )
    make_console().print(table)


# ------------------------------------------------------------------ audience


@click.group("audience")
def audience_group() -> None:
    """Uploaded lists of LINE user ids, used in conditions as {"audience": NAME}."""


@audience_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def audience_import(name: str, file: Path) -> None:
    """Replace (or create) audience NAME with the user ids in FILE (TXT: one per line; CSV:
    the first column, with or without a header). Any bad line → nothing is imported."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from bot.services.audiences import AudienceError, import_audience

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
    runtime = runtime_or_exit()
    console = make_console()
    try:
        with Progress(BarColumn(), MofNCompleteColumn(), console=console, transient=True) as bar:
            task = bar.add_task("import", total=None)
            result = import_audience(
                runtime.db,
                name,
                text,
                source=file.name,
                now=runtime.clock.now(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except AudienceError as exc:
        fail(f"{file}: {exc.message}", exc.problems)
    finally:
        runtime.close()
    verb = "replaced" if result.replaced else "created"
    console.print(
        f"audience {result.name} {verb}: {result.size:,} user id(s)"
        + (f" ({result.duplicates} duplicate line(s) ignored)" if result.duplicates else "")
    )


@audience_group.command("list")
def audience_list() -> None:
    """Audiences and their sizes."""
    from rich.table import Table

    from bot.services.audiences import list_audiences

    runtime = runtime_or_exit()
    try:
        rows = list_audiences(runtime.db)
    finally:
        runtime.close()
    table = Table("name", "size", "source", "updated")
    for row in rows:
        table.add_row(
            str(row["name"]), f"{row['size']:,}", str(row["source"]), str(row["updated_at"])
        )
    make_console().print(table)
