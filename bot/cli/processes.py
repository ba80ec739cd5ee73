"""`stepline serve` and `stepline worker`: the long-running processes of a deployment."""

from __future__ import annotations

import click

from bot.cli.common import make_console, process_settings_or_exit


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the webhook bot and admin API under gunicorn.

    SIGHUP (or POST /api/v1/flows/reload) reloads the flows; every serve and worker process
    on the database moves to them within STEPLINE_CATALOGUE_CHECK_SECONDS (GET /healthz shows
    each worker's catalogue version)."""
    from bot.catalogue import CatalogueError
    from bot.catalogue.loader import load_catalogue
    from bot.web.serving import run_gunicorn

    settings = process_settings_or_exit()
    try:
        load_catalogue(settings.flows_dir)
    except CatalogueError as exc:
        click.echo(str(exc), err=True)
        raise click.ClickException(
            f"the catalogue in {settings.flows_dir} has problems; fix them (stepline check)"
        ) from exc
    run_gunicorn(host=host, port=port, workers=workers, threads=threads)


@click.command("worker")
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
    run it inside the web processes. It runs the flows last reloaded in any process (checked
    every STEPLINE_CATALOGUE_CHECK_SECONDS); SIGHUP reloads them here and everywhere. Sends are paced at LINE's rate limits per endpoint;
    each worker paces its own, so with several workers give each its share in
    STEPLINE_RATE_LIMITS (e.g. two workers: multicast=100,push=1000)."""

    from bot.runtime import Runtime
    from bot.scheduler.ticks import run_worker

    settings = process_settings_or_exit()
    runtime = Runtime(settings)
    try:
        run_worker(
            runtime,
            once=once,
            batch=batch,
            threads=threads,
            tick_seconds=tick,
            console=make_console(),
        )
    finally:
        runtime.close()
