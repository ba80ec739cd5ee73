"""WSGI entry point for production: `gunicorn wsgi:app`."""

from bot.web.app import create_app

app = create_app()
