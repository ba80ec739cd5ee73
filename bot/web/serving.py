"""`stepline serve`: gunicorn in-process, with SIGHUP meaning "reload the flows".

gunicorn's own SIGHUP restarts the workers; a restarted worker would lose the last good
catalogue if the YAML is now broken. So the master forwards SIGHUP to the workers, and each
worker reloads in place, keeping its catalogue when the new one has problems.
"""

from __future__ import annotations

import signal
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter


class ReloadingArbiter(Arbiter):
    def handle_hup(self) -> None:
        self.log.info("SIGHUP: asking workers to reload the catalogue")
        self.kill_workers(signal.SIGHUP)


def _post_worker_init(worker: Any) -> None:
    app = worker.wsgi
    # Each worker processes the webhook events it stores, and sweeps what a dead one left.
    app.extensions["stepline.events"].start_sweeping()

    def reload(_signum: int, _frame: Any) -> None:
        app.extensions["stepline"].catalogues.reload_soon("via SIGHUP")

    signal.signal(signal.SIGHUP, reload)


def _worker_exit(_server: Any, worker: Any) -> None:
    """Let the events being processed finish; the rest wait for another process's sweep."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "stepline.events" in getattr(app, "extensions", {}):
        app.extensions["stepline.events"].close()


class StepLineServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from bot.web.app import create_app

        return create_app()

    def run(self) -> None:
        ReloadingArbiter(self).run()


def run_gunicorn(*, host: str, port: int, workers: int, threads: int) -> None:
    StepLineServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "post_worker_init": _post_worker_init,
            "worker_exit": _worker_exit,
            "accesslog": "-",
            "timeout": 30,
        }
    ).run()
