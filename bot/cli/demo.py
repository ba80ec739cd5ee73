"""`stepline demo`: the bot, the worker and the LINE emulator on SQLite, with the example flows.

No LINE account is needed: the emulator stands in for LINE, and the terminal chat (or any HTTP
client of the emulator's `/_emulator/` API) plays a friend.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.common import fail, make_console, serve_or_exit, stop_on_signals
from bot.config import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from bot.delivery.worker import DeliveryWorker
    from bot.runtime import Runtime

DEMO_SECRET = "stepline-demo-channel-secret"
DEMO_TOKEN = "stepline-demo-channel-access-token"
DEMO_ADMIN_TOKEN = "demo-admin-token"


def watch_catalogue(
    runtime: Runtime, console: Console, stop: threading.Event, sync_lock: threading.Lock
) -> None:
    """Reload the flows when a YAML file changes; show `check` problems instead of crashing."""
    folder = runtime.settings.flows_dir

    def snapshot() -> dict[Path, float]:
        files = [*folder.rglob("*.yaml"), *folder.rglob("*.yml")]
        return {f: f.stat().st_mtime for f in files if f.is_file()}

    seen = snapshot()
    while not stop.wait(1.0):
        try:
            current = snapshot()
        except OSError:
            continue
        if current == seen:
            continue
        seen = current
        result = runtime.catalogues.reload(how="via file change")
        if result.ok:
            console.print("[green]flows reloaded[/]")
            sync_rich_menus(runtime, console, sync_lock)
        else:
            console.print(
                f"[red]flows have {len(result.problems)} problem(s); still running the last good ones:[/]"
            )
            for problem in result.problems:
                console.print(f"  {problem}", markup=False, soft_wrap=True)


def sync_rich_menus(runtime: Runtime, console: Console, lock: threading.Lock) -> None:
    """`stepline richmenu sync` against the emulator, so the simulator shows the menus and
    follows every edit of them (one sync at a time: two at once would both create)."""
    with lock:
        _sync_rich_menus(runtime, console)


def _sync_rich_menus(runtime: Runtime, console: Console) -> None:
    from bot.services.richmenu_sync import RichMenuSync

    try:
        sync = RichMenuSync(runtime)
        plan = sync.plan()
        if any(step.action != "keep" for step in plan.menus) or plan.retire:
            result = sync.apply(plan)
            console.print(
                f"rich menus synced: {', '.join(plan.describe())}; {result.relinked} friend(s) re-linked"
            )
        else:
            sync.apply(plan)
    except Exception as exc:  # the demo keeps running; the log says why
        logging.getLogger(__name__).exception("rich menu sync failed")
        console.print(f"[red]rich menu sync failed: {exc}[/]")


def run_worker_ticks(worker: DeliveryWorker, runtime: Runtime, stop: threading.Event) -> None:
    """The worker's jobs, in a thread of the demo: deliver every second, sweep timeouts."""
    from bot.scheduler.ticks import deliver, run_broadcasts, run_steps
    from bot.services.timeouts import expire_due_conversations

    ticks = 0
    while not stop.wait(1.0):
        ticks += 1
        try:
            run_steps(runtime)
            run_broadcasts(runtime, worker)
            deliver(worker)
            if ticks % 5 == 0:
                expire_due_conversations(runtime)
        except Exception:  # keep going through a bad moment (e.g. a broken catalogue)
            logging.getLogger(__name__).exception("worker tick failed")


def restore_simulator_users(emulator_app: Any, runtime: Runtime) -> int:
    """The emulator keeps its users in memory, the bot keeps its friends in the database: at
    start, every friend the demo's database knows becomes a simulator user again, with their
    name and whether they follow or blocked (no webhooks: nothing changed for the bot)."""
    from sqlalchemy import select

    from bot.emulator import ids
    from bot.emulator.context import EXTENSION_KEY
    from storage.models import Friend, FriendStatus

    store = emulator_app.extensions[EXTENSION_KEY].store
    now = runtime.clock.now()
    with runtime.db.read() as session:
        friends = session.execute(
            select(Friend.line_user_id, Friend.display_name, Friend.status).order_by(Friend.id)
        ).all()
    restored = 0
    for user_id, name, status in friends:
        if not ids.is_user_id(user_id) or store.get_user(user_id) is not None:
            continue
        store.add_user(name or "(名前なし)", now, user_id=user_id)
        store.follow(user_id, now)
        if status == FriendStatus.BLOCKED:
            store.unfollow(user_id, now)
        restored += 1
    return restored


def after_time_travel(worker: DeliveryWorker, runtime: Runtime) -> None:
    """The time machine moved the clock: run what became due now, not at the next tick."""
    from bot.scheduler.ticks import deliver, run_broadcasts, run_steps
    from bot.services.timeouts import expire_due_conversations

    expire_due_conversations(runtime)
    run_steps(runtime)
    run_broadcasts(runtime, worker)
    deliver(worker)


@click.command("demo")
@click.option("--port", default=8000, show_default=True, type=int, help="The bot's port.")
@click.option("--emulator-port", default=8001, show_default=True, type=int)
@click.option(
    "--flows",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("flows"),
    show_default=True,
    help="Folder of YAML flows.",
)
@click.option(
    "--database",
    default="sqlite:///instance/demo.db",
    show_default=True,
    help="SQLAlchemy URL of the demo database.",
)
@click.option(
    "--chat", is_flag=True, help="Also chat in this terminal (as well as in the browser)."
)
@click.option("--name", default="花子", show_default=True, help="Your name in the terminal chat.")
def demo_command(
    port: int, emulator_port: int, flows: Path, database: str, chat: bool, name: str
) -> None:
    """Run the bot and the LINE emulator with the example flows; chat in the browser.

    Open the simulator URL it prints: create a friend, follow, answer the questionnaire, watch
    tags and fields change, and move the clock forward to try timeouts. Edit flows/*.yaml
    while it runs: the bot reloads them, or shows the problems on the page."""

    from bot.catalogue import CatalogueError
    from bot.catalogue.loader import load_catalogue

    console = make_console()
    if not flows.is_dir():
        raise click.ClickException(f"no flows folder at {flows.resolve()}")
    try:
        load_catalogue(flows)
    except CatalogueError as exc:
        # Nothing good to fall back on yet: a bot with no flows would answer every webhook
        # with an error. Once running, a broken edit keeps the last good flows instead.
        fail(
            f"the flows in {flows} have problems; fix them (`stepline check`) and start the "
            "demo again",
            [str(problem) for problem in exc.problems],
        )
    log_file = Path("instance") / "demo.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # The terminal is the chat; the bot's and emulator's logs go to a file.
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # From here on, Ctrl-C or SIGTERM at any moment stops what has started, in order.
    stop_on_signals()
    stop = threading.Event()
    with contextlib.ExitStack() as started:
        try:
            _run_demo(
                started, stop, console, port, emulator_port, flows, database, log_file, chat, name
            )
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
    console.print("demo stopped")


def _run_demo(
    started: contextlib.ExitStack,
    stop: threading.Event,
    console: Console,
    port: int,
    emulator_port: int,
    flows: Path,
    database: str,
    log_file: Path,
    chat: bool,
    name: str,
) -> None:
    """Start the emulator, the bot, the worker ticks and the watchers (each registered in
    `started` to be stopped), print where they are, then wait (or chat) until interrupted."""
    from bot.clock import OffsetClock
    from bot.delivery.worker import DeliveryWorker
    from bot.emulator.app import create_emulator_app
    from bot.emulator.chat import run_chat
    from bot.emulator.config import EmulatorConfig
    from bot.richmenus.render import bundled_font_path
    from bot.web.app import create_app
    from storage.migrate import upgrade

    upgrade(database)
    clock = OffsetClock()
    emulator = serve_or_exit(
        emulator_app := create_emulator_app(
            emulator_config := EmulatorConfig(
                channel_secret=DEMO_SECRET,
                channel_access_token=DEMO_TOKEN,
                webhook_url=f"http://127.0.0.1:{port}/callback",
                clock=clock,
                account_timezone="Asia/Tokyo",
                bot_display_name="アロマサロン そよかぜ",
                page_font=bundled_font_path(),
            )
        ),
        port=emulator_port,
        option="--emulator-port",
    )
    started.callback(emulator.stop)
    settings = Settings(
        database_url=database,
        channel_secret=DEMO_SECRET,
        channel_access_token=DEMO_TOKEN,
        line_api_base_url=emulator.url,
        line_data_api_base_url=emulator.url,
        flows_dir=flows,
        admin_token=DEMO_ADMIN_TOKEN,
        public_url=f"http://127.0.0.1:{port}",  # tracked links /r/... point at this bot
    )
    app = create_app(settings, clock=clock, process="demo")
    runtime: Runtime = app.extensions["stepline"]
    started.callback(runtime.close)
    events = app.extensions["stepline.events"]
    events.start_sweeping()
    started.callback(events.close)
    restored = restore_simulator_users(emulator_app, runtime)
    if restored:
        console.print(f"{restored} simulator user(s) from the last run are back on the page")
    bot = serve_or_exit(app, port=port, option="--port")
    started.callback(bot.stop)
    emulator_config.bot_api_url = bot.url
    emulator_config.bot_admin_token = DEMO_ADMIN_TOKEN
    worker = DeliveryWorker(runtime.db, runtime.sender, threads=4)
    started.callback(worker.close)
    emulator_config.on_clock_change = lambda: after_time_travel(worker, runtime)
    sync_lock = threading.Lock()
    threading.Thread(
        target=watch_catalogue,
        args=(runtime, console, stop, sync_lock),
        name="flows-watch",
        daemon=True,
    ).start()
    threading.Thread(
        target=run_worker_ticks, args=(worker, runtime, stop), name="worker", daemon=True
    ).start()
    # Drawing and creating the menus takes a moment: the page shows them when they are ready.
    threading.Thread(
        target=sync_rich_menus,
        args=(runtime, console, sync_lock),
        name="richmenu-sync",
        daemon=True,
    ).start()
    console.print(
        f"[bold]stepline demo[/]: open [bold cyan]{emulator.url}/simulator[/] in a browser"
    )
    console.print(f"bot on {bot.url} (webhook {bot.url}/callback)")
    console.print(f"LINE emulator on {emulator.url} (control API {emulator.url}/_emulator/)")
    console.print(f"admin API: {bot.url}/api/v1 with 'Authorization: Bearer {DEMO_ADMIN_TOKEN}'")
    console.print(f"flows from {flows.resolve()} (edits are picked up live); database {database}")
    console.print(f"logs in {log_file}")
    if chat:
        run_chat(emulator.url, name)
    else:
        console.print("Ctrl-C to stop.")
        stop.wait()
