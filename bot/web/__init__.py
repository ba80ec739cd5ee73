"""The HTTP door (Flask only): the app factory, the webhook `POST /callback`, the admin API
under `/api/v1`, tracked links `GET /r/<token>`, `GET /healthz`, `GET /metrics`, and the
gunicorn runner of `stepline serve`.

Thin: parse the request → call a use case in `bot.services` → map its errors to HTTP statuses
(`bot.services.errors` carries none). May import services, the runtime and anything below;
nothing below imports Flask.
"""
