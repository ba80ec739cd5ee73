"""A small threaded HTTP/1.1 WSGI server with keep-alive, run on a background thread.

The demo, `stepline emulator` and the tests serve the bot and the LINE emulator with it;
production serves the bot with gunicorn (`stepline serve`).

Why not werkzeug's development server: it closes the connection after every response (it
cannot tell where a request's unread body ends), so every request paid a TCP connection, a new
thread and werkzeug's 10 ms wait for leftover bytes, on both sides: about a third of the CPU
of a push through the emulator. Here a connection stays open and keeps its thread, and a
request's body is read whole (`Content-Length` or chunked) before the app sees it, so the next
request on the connection always starts where this one ended.

One rule beyond WSGI, for the emulator's "accept, then drop the response" fault: an app that
raises `ConnectionAbortedError` before its response has started gets the connection closed with
nothing written, as a peer that went away would.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

log = logging.getLogger("stepline.http")

IDLE_TIMEOUT_SECONDS = 60.0  # an idle keep-alive connection (or a stalled body) is closed then
MAX_BODY_BYTES = 64 * 1024 * 1024  # well above LINE's own limits (rich menu images: 1 MB)
_NO_BODY_STATUSES = {204, 304}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class _BadRequest(Exception):
    """The request cannot be read; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WSGIRequestHandler(BaseHTTPRequestHandler):
    """One connection: requests are served one after the other until either side closes."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in one write, but a response split over writes (streamed, or
    # chunked) must not wait for the peer's delayed ACK (Nagle's algorithm).
    disable_nagle_algorithm = True
    server: KeepAliveWSGIServer

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()  # else the peer went away or stalled: nothing to answer

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self.send_error(exc.status, str(exc))
            return
        WSGIResponse(self, body).run(self.server.app)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _BadRequest(501, f"unsupported Transfer-Encoding: {encoding}")
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise _BadRequest(400, "bad Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionResetError("the request body ended early")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "bad chunk size") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: not passed on
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413, "request body too large")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionResetError("the request body ended early")
            parts.append(chunk)
            self.rfile.readline(3)  # the CRLF after the chunk

    def environ(self, body: bytes) -> dict[str, Any]:
        """The WSGI environ (PEP 3333) of the request just read."""
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute form: keep the path only
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        for name, value in self.headers.items():
            if "_" in name:
                continue  # as gunicorn and nginx do: it could pose as a dashed header
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        if "Content-Type" in self.headers:
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        if body or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class WSGIResponse:
    """Runs the app for one request and writes its answer, framed so the connection can
    carry the next request: `Content-Length` when the app gives it, else chunked."""

    def __init__(self, handler: WSGIRequestHandler, body: bytes) -> None:
        self.handler = handler
        self.environ = handler.environ(body)
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.started = False
        self.chunked = False
        self.has_body = handler.command != "HEAD"

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            if self.started:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status, self.headers = status, list(headers)
        return self.write

    def _head(self) -> bytes:
        """The status line and headers; decides the framing."""
        assert self.status is not None, "the app wrote before calling start_response"
        handler = self.handler
        code = int(self.status.split(None, 1)[0])
        names = {name.lower() for name, _ in self.headers}
        if 100 <= code < 200 or code in _NO_BODY_STATUSES:
            self.has_body = False
        elif "content-length" not in names and self.has_body:
            if handler.request_version == "HTTP/1.1":
                self.chunked = True
            else:
                handler.close_connection = True  # HTTP/1.0: the end of the body is the close
        if handler.request_version != "HTTP/1.1":
            handler.close_connection = True
        for name, value in self.headers:
            if name.lower() == "connection" and value.strip().lower() == "close":
                handler.close_connection = True
        lines = [f"{handler.protocol_version} {self.status}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if "date" not in names:
            lines.append(f"Date: {handler.date_time_string()}")
        if "server" not in names:
            lines.append("Server: stepline")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        if handler.close_connection and "connection" not in names:
            lines.append("Connection: close")
        handler.log_request(code)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def write(self, data: bytes) -> None:
        out = b""
        if not self.started:
            out = self._head()
            self.started = True
        if data and self.has_body:
            out += b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        if out:
            self.handler.wfile.write(out)

    def run(self, app: WSGIApp) -> None:
        handler = self.handler
        try:
            result = app(self.environ, self.start_response)
        except ConnectionAbortedError:
            handler.close_connection = True  # the app asked to drop the response
            return
        except Exception:
            log.exception("error on %s", handler.requestline)
            self._fail()
            return
        try:
            for data in result:
                self.write(data)
            if not self.started:
                self.write(b"")
            if self.chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, TimeoutError):
            handler.close_connection = True
        except Exception:
            log.exception("error on %s", handler.requestline)
            self._fail()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _fail(self) -> None:
        """A 500 if nothing was sent yet; the connection is closed either way."""
        handler = self.handler
        handler.close_connection = True
        if self.started:
            return
        body = b"Internal Server Error"
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        self.has_body = handler.command != "HEAD"
        with contextlib.suppress(ConnectionError, TimeoutError):
            self.write(body)


class KeepAliveWSGIServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A thread per connection; `close_connections()` ends the open ones (at stop)."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: WSGIApp) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), WSGIRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):  # already closed by its thread
                sock.shutdown(socket.SHUT_RDWR)


class ServerThread:
    """Serve `app` on host:port (port 0 picks a free one) until `stop()`."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = KeepAliveWSGIServer(host, port, app)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http:{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and every open connection."""
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
