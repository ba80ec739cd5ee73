"""`bot.emulator.http_server`: keep-alive HTTP/1.1 over real sockets, request framing both ways, the
dropped-response rule and a stop that ends open connections."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests

from bot.emulator.http_server import ServerThread


def echo_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answers with what it saw; `/stream` without Content-Length, `/drop` drops the
    response, `/boom` fails."""
    path = environ["PATH_INFO"]
    if path == "/drop":
        raise ConnectionAbortedError("drop it")
    if path == "/boom":
        raise RuntimeError("the app failed")
    body = environ["wsgi.input"].read()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"part one, ", b"", b"part two"]
    text = (
        f"{environ['REQUEST_METHOD']} {path} ?{environ['QUERY_STRING']} "
        f"port={environ['REMOTE_PORT']} len={environ.get('CONTENT_LENGTH', '-')} "
        f"x={environ.get('HTTP_X_THING', '-')} body="
    ).encode() + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
    return [text]


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(echo_app) as running:
        yield running


def connect(server: ServerThread) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=5)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_requests_share_one_connection(server: ServerThread) -> None:
    conn = connect(server)
    answers = []
    for n in range(3):
        conn.request("POST", f"/echo?n={n}", body=f"本文{n}".encode(), headers={"X-Thing": "a"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Connection") is None  # kept open
        answers.append(response.read().decode())
    ports = {answer.split("port=")[1].split()[0] for answer in answers}
    assert len(ports) == 1, answers  # the same client socket served all three
    assert answers[2].startswith("POST /echo ?n=2 ")
    assert answers[2].endswith("len=7 x=a body=本文2")
    conn.close()


def test_pipelined_requests_are_split_at_the_body(server: ServerThread) -> None:
    first = b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    second = b"GET /two?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(first + second)
        raw = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    assert b"POST /one ?" in raw and raw.index(b"body=hello") < raw.index(b"GET /two ?q=1")
    assert raw.rstrip().endswith(b"body=")  # the second had no body, then the server closed


def test_chunked_request_body(server: ServerThread) -> None:
    response = requests.post(
        f"{server.url}/echo", data=iter([b"ab", b"cde"]), headers={"X-Thing": "c"}, timeout=5
    )
    assert response.text.endswith("len=5 x=c body=abcde")


def test_response_without_length_is_chunked_and_the_connection_stays(
    server: ServerThread,
) -> None:
    conn = connect(server)
    conn.request("GET", "/stream")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"part one, part two"
    conn.request("HEAD", "/stream")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b""
    conn.request("GET", "/echo")  # the connection is still in step after both
    assert conn.getresponse().read().startswith(b"GET /echo")
    conn.close()


def test_http_1_0_gets_the_connection_closed(server: ServerThread) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        raw = read_all(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in raw


def test_a_dropped_response_closes_the_connection_with_nothing_written(
    server: ServerThread,
) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /drop HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        assert read_all(sock) == b""
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{server.url}/drop", data=b"x", timeout=5)


def test_an_app_failure_is_a_500_and_a_closed_connection(server: ServerThread) -> None:
    conn = connect(server)
    conn.request("GET", "/boom")
    response = conn.getresponse()
    assert response.status == 500
    assert response.getheader("Connection") == "close"
    assert response.read() == b"Internal Server Error"
    conn.close()


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"Content-Length: nope\r\n", 400),
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: 999999999999\r\n", 413),
        (b"Transfer-Encoding: gzip\r\n", 501),
    ],
)
def test_unreadable_bodies_are_refused(server: ServerThread, head: bytes, status: int) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
        raw = read_all(sock)
    assert raw.startswith(f"HTTP/1.1 {status} ".encode()), raw[:80]


def test_percent_encoded_paths_reach_the_app_as_wsgi_strings(server: ServerThread) -> None:
    response = requests.get(f"{server.url}/r/予約", timeout=5)
    path = response.content.decode("utf-8").split()[1]
    assert path.encode("latin-1").decode("utf-8") == "/r/予約"  # PEP 3333's native strings


def test_stop_ends_idle_keep_alive_connections() -> None:
    server = ServerThread(echo_app).start()
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert read_all(sock) == b""  # the server closed its end
    sock.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/echo", timeout=2)
