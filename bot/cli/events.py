"""`stepline events`: webhook events that failed every attempt, and putting them back."""

from __future__ import annotations

import click

from bot.cli.common import fail, make_console, runtime_or_exit


@click.group("events")
def events_group() -> None:
    """Webhook events parked as failed (processing raised on every attempt).

    A failing event is retried with a backoff (STEPLINE_EVENT_ATTEMPTS times) and then
    parked; fix the cause (a catalogue edit, a database problem), then retry it."""


@events_group.command("failed")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
def events_failed(limit: int) -> None:
    """List failed events, oldest first, with the error of their last attempt."""
    from rich.table import Table

    from bot.services.inbox import failed_events

    runtime = runtime_or_exit()
    try:
        rows = failed_events(runtime, limit)
    finally:
        runtime.close()
    console = make_console()
    if not rows:
        console.print("no failed events")
        return
    table = Table(title=f"{len(rows)} failed event(s)")
    for column in ("id", "type", "LINE user id", "attempts", "received", "error"):
        table.add_column(column)
    tz = runtime.settings.tz
    for row in rows:
        error = (row.error or "").strip().splitlines()
        table.add_row(
            str(row.id),
            row.type,
            row.line_user_id or "",
            str(row.attempts),
            row.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            error[-1] if error else "",
        )
    console.print(table)
    console.print("retry with: stepline events retry ID … (or --all)")


@events_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Retry every failed event.")
def events_retry(ids: tuple[int, ...], every: bool) -> None:
    """Put failed events back in the queue; a running `serve` or `worker` processes them
    within seconds (in each friend's order)."""
    from bot.services.inbox import retry_failed

    if bool(ids) == every:
        fail("give the ids of failed events (see `stepline events failed`), or --all")
    runtime = runtime_or_exit()
    try:
        count = retry_failed(runtime, None if every else list(ids))
    finally:
        runtime.close()
    if ids and count < len(set(ids)):
        fail(
            f"{count} of {len(set(ids))} event(s) queued again; the others are not failed "
            "events (see `stepline events failed`)"
        )
    make_console().print(
        f"{count} event(s) queued again: a running `stepline serve` or `stepline worker` "
        "processes them"
    )
