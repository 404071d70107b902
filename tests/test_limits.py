"""Limits on what one request can make the server hold, against a real `serve`.

Each test sends far more than the limit and checks the answer and that the
server's resident memory (VmRSS) stayed bounded: it counts bytes, not time.
"""

from __future__ import annotations

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
    server = start_server(sqlite_url, tmp_path)
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


def test_a_200_mb_header_line_is_refused_at_the_parser(srv: Server) -> None:
    before = rss_mb(srv.proc.pid)
    head = b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\nX-Filler: "
    sent, raw = _flood(srv.port, head, b"a" * MB, 200 * MB)
    grown = rss_mb(srv.proc.pid) - before
    assert _status(raw) == 431
    assert sent < 200 * MB, "the server read the whole header line"
    assert grown < RSS_MARGIN_MB, f"RSS grew {grown:.0f} MB for a refused header"
    assert httpx.get(f"{srv.url}/healthz").status_code == 200
