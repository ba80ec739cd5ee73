"""`GET /r/<token>`: a tracked link. Records the click (`bot.services.links`) and redirects to
the URL the catalogue names for that link — never to one taken from the request; answers 429
(recording nothing) to more than `STEPLINE_LINK_CLICKS_PER_MINUTE` clicks a minute."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, current_app, redirect, request
from werkzeug.wrappers import Response

from bot.runtime import Runtime
from bot.services.errors import TooManyRequests
from bot.services.links import record_click

log = logging.getLogger(__name__)

# Link-preview fetchers and crawlers: LINE itself fetches a URL sent in a message to draw its
# preview. Their requests are redirected but are not clicks (no row, no on_click).
_PREVIEW_AGENTS = re.compile(
    r"line-crawler|facebookexternalhit|twitterbot|slackbot|discordbot|telegrambot|whatsapp"
    r"|skypeuripreview|linkedinbot|googlebot|bingbot|applebot|embedly|bitlybot",
    re.IGNORECASE,
)


blueprint = Blueprint("links", __name__)

NOT_FOUND_PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>リンクが見つかりません</title></head>
<body><p>このリンクは無効です。<br>This link is not valid.</p></body></html>
"""

TOO_MANY_PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>しばらくお待ちください</title></head>
<body><p>しばらくしてからもう一度お試しください。<br>Too many requests; try again in a minute.</p>
</body></html>
"""

_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
}


def not_found() -> Response:
    return Response(NOT_FOUND_PAGE, status=404, mimetype="text/html", headers=_NO_STORE)


def too_many(retry_after: int) -> Response:
    headers = {**_NO_STORE, "Retry-After": str(retry_after)}
    return Response(TOO_MANY_PAGE, status=429, mimetype="text/html", headers=headers)


def _go(url: str) -> Response:
    response = redirect(url, 302)
    response.headers.update(_NO_STORE)
    return response


def is_preview_fetch() -> bool:
    """A HEAD request or a known link-preview fetcher or crawler: not a person's click."""
    agent = request.headers.get("User-Agent", "")
    return request.method == "HEAD" or bool(_PREVIEW_AGENTS.search(agent))


@blueprint.get("/r/<token>")
def follow(token: str) -> Response:
    runtime: Runtime = current_app.extensions["stepline"]
    tokens = runtime.templates.links
    click = tokens.read(token) if tokens is not None else None
    if click is None:
        log.info("tracked link: invalid token (%d chars)", len(token))
        return not_found()
    link = runtime.catalogue.links.get(click.link)
    if link is None:
        log.info("tracked link: %r is no longer in the catalogue", click.link)
        return not_found()
    if is_preview_fetch():
        return _go(link.url)
    try:
        url = record_click(runtime, click)
    except TooManyRequests as exc:
        log.info("tracked link %r: %s", click.link, exc.message)
        return too_many(exc.retry_after)
    except Exception:
        # The person still reaches the page; only the record (and on_click) is lost.
        log.exception("tracked link %r: recording the click failed", click.link)
        return _go(link.url)
    return not_found() if url is None else _go(url)
