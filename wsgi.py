"""WSGI entry point for production: `gunicorn wsgi:app`.

Each gunicorn worker imports this and sweeps the webhook queue for events a dead process
left (`stepline serve` does the same in its workers). With `--preload` the sweep thread would
live only in the master: then `stepline worker`'s sweep is the one that takes them.
"""

from bot.web.app import create_app

app = create_app()
app.extensions["stepline.events"].start_sweeping()
