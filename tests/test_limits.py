"""Limits on what one request can make the server hold, against a real `serve`.

Each test sends far more than the limit and checks the answer and that the
server's resident memory (VmRSS) stayed bounded: it counts bytes, not time.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, rss_mb, start_server

MB = 1024 * 1024
# Growth allowed while a request far larger than the limits is refused: the
# parser and read buffers, allocator slack. Unbounded, the growth is a
# multiple of what was sent (562 MB for a 200 MB header, 3.1 GB for a 1 GB body).
RSS_MARGIN_MB = 48


@pytest.fixture
def srv(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        sqlite_url,
        tmp_path,
        env={"MAILBEACON_BODY_TIMEOUT": "2", "MAILBEACON_HEADER_TIMEOUT": "2"},
    )
    try:
        # Warm: first requests import and cache things; measure after them.
        server.message()
        server.api("GET", "/healthz")
        yield server
    finally:
        server.stop()


def _flood(port: int, head: bytes, piece: bytes, total: int) -> tuple[int, bytes]:
    """Send ``head`` then ``piece`` until ``total`` bytes or the server stops
    reading; return (bytes sent, what the server answered)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
            while sent < total:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        return sent, _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return got


def _status(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw.split(b" ", 2)[1])


def _json_body(raw: bytes) -> dict[str, str]:
    return dict(json.loads(raw.split(b"\r\n\r\n", 1)[1]))


def test_a_200_mb_header_line_is_refused_at_the_parser(srv: Server) -> None:
    before = rss_mb(srv.proc.pid)
    head = b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\nX-Filler: "
    sent, raw = _flood(srv.port, head, b"a" * MB, 200 * MB)
    grown = rss_mb(srv.proc.pid) - before
    assert _status(raw) == 431
    assert sent < 200 * MB, "the server read the whole header line"
    assert grown < RSS_MARGIN_MB, f"RSS grew {grown:.0f} MB for a refused header"
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_a_declared_1_gb_body_without_a_key_is_refused_before_it_is_read(srv: Server) -> None:
    before = rss_mb(srv.proc.pid)
    head = (
        b"POST /api/v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (1024 * MB)
    )
    sent, raw = _flood(srv.port, head, b"x" * MB, 1024 * MB)
    grown = rss_mb(srv.proc.pid) - before
    assert _status(raw) == 413
    error = _json_body(raw)
    assert error["error"] == "too_large" and "max_body_bytes" in error["message"]
    assert sent < 1024 * MB
    assert grown < RSS_MARGIN_MB, f"RSS grew {grown:.0f} MB for a refused body"


def test_a_chunked_body_is_counted_as_it_arrives(srv: Server) -> None:
    before = rss_mb(srv.proc.pid)
    head = (
        b"POST /api/v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n%s\r\n" % (MB, b"x" * MB)
    sent, raw = _flood(srv.port, head, piece, 300 * MB)
    grown = rss_mb(srv.proc.pid) - before
    assert _status(raw) == 413 and _json_body(raw)["error"] == "too_large"
    assert sent < 300 * MB
    assert grown < RSS_MARGIN_MB, f"RSS grew {grown:.0f} MB for a refused chunked body"


def test_instrument_requests_have_their_own_larger_limit(srv: Server) -> None:
    html = "<html><body><p>" + "x" * (3 * MB) + "</p></body></html>"
    with srv.client() as c:
        # 3 MB: over the 1 MB of ordinary routes, under the 10 MB of instrumenting.
        big = c.post("/api/v1/messages", json={"recipient": "a@example.com", "subject": html})
        assert big.status_code == 413, big.text
        assert big.json()["error"] == "too_large"
        done = c.post("/api/v1/instrument", json={"recipient": "a@example.com", "html": html})
        assert done.status_code == 201, done.text[:300]
        lint = c.post("/api/v1/lint", json={"html": html})
        assert lint.status_code == 200, lint.text[:300]
        over = c.post("/api/v1/lint", json={"html": "x" * (11 * MB)})
        assert over.status_code == 413 and "max_instrument_body_bytes" in over.json()["message"]


def test_a_body_that_stalls_is_answered_408(srv: Server) -> None:
    head = (
        b"POST /api/v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n"
    )
    # A small body: the app is not started until it is in; header_timeout (2 s here).
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head % 100 + b'{"recipient"')  # ...and nothing more
        raw = _read_all(sock)
    assert _status(raw) == 408
    # A large one: the app streams it from 64 KB on; body_timeout (2 s here).
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head % (512 * 1024) + b" " * (100 * 1024))
        raw = _read_all(sock)
    assert _status(raw) == 408 and _json_body(raw)["error"] == "timeout"
