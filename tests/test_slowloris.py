"""Slow clients against a real `serve`: header time, idle time and the
connection cap keep the tracking paths answering for everyone else."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, start_server

pytestmark = pytest.mark.process  # slow clients on raw sockets against a real `serve`

CAP = 100
# More than the server may open files: without a cap, accept() starts failing
# and nobody gets in (1,100 slow connections did that at the usual 1,024).
FILES = 400
SLOW = 500


@pytest.fixture
def srv(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        sqlite_url,
        tmp_path,
        env={"MAILBEACON_MAX_CONNECTIONS": str(CAP), "MAILBEACON_HEADER_TIMEOUT": "60"},
    )
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FILES, FILES))
    try:
        yield server
    finally:
        server.stop()


SLOW_HEAD = b"GET /o/x.gif HTTP/1.1\r\nHost: t\r\n"


def _slow(port: int, first: bytes = SLOW_HEAD) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(first)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _wait_closed(socks: list[socket.socket], want: int, deadline: float) -> int:
    closed: set[int] = set()
    while time.monotonic() < deadline:
        closed |= {i for i, s in enumerate(socks) if i not in closed and _closed_by_server(s)}
        if len(closed) >= want:
            break
        time.sleep(0.05)
    return len(closed)


def _gauge(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


# Half send their headers slowly; the other half send headers and then drip
# a body (its wait between pieces is below body_timeout, so only the cap can
# move them along).
SLOW_BODY = (
    b"POST /api/v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{"
)


def test_slow_clients_over_the_cap_do_not_keep_the_pixel_from_others(srv: Server) -> None:
    msg = srv.message()
    slow = [_slow(srv.port, SLOW_BODY if i % 2 else SLOW_HEAD) for i in range(SLOW)]
    try:
        for i, sock in enumerate(slow):  # a second piece each, like slowloris
            try:
                sock.send(b" " if i % 2 else b"X-Drip: 1\r\n")
            except OSError:
                pass
        started = time.monotonic()
        r = httpx.get(msg["open_url"], timeout=10)
        took = time.monotonic() - started
        assert r.status_code == 200 and r.headers["x-mailbeacon-recorded"] == "yes"
        assert took < 1.0, f"the pixel took {took:.2f} s with {SLOW} slow clients held"
        # The oldest unfinished ones made room: the server holds no more than its cap.
        closed = _wait_closed(slow, SLOW - CAP, time.monotonic() + 30)
        assert closed >= SLOW - CAP, f"only {closed} of {SLOW} slow connections were closed"
        assert _gauge(srv, "mailbeacon_http_connections") <= CAP
    finally:
        for sock in slow:
            sock.close()


def test_a_request_being_answered_is_never_cut_to_make_room(srv: Server) -> None:
    live = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    live.sendall(
        b"GET /api/v1/stream HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n"
        % srv.key.encode()
    )
    got = b""
    while b"retry:" not in got:  # the stream is being answered
        chunk = live.recv(65536)
        assert chunk, got
        got += chunk
    slow = [_slow(srv.port, SLOW_BODY if i % 2 else SLOW_HEAD) for i in range(2 * CAP)]
    try:
        assert _wait_closed(slow, CAP, time.monotonic() + 30) >= CAP
        msg = srv.message()
        httpx.get(msg["open_url"], timeout=10)
        while b"event: hit" not in got:  # still open: the hit arrives on it
            chunk = live.recv(65536)
            assert chunk, "the live stream was closed to make room"
            got += chunk
    finally:
        live.close()
        for sock in slow:
            sock.close()


def _drip_until_answered(sock: socket.socket, byte: bytes, deadline: float) -> bytes:
    """Send a byte every 0.1 s (bytes arriving must not extend the time) until
    the server answers or closes; what it answered."""
    got = b""
    while time.monotonic() < deadline:
        try:
            sock.send(byte)
            chunk = sock.recv(65536)
        except BlockingIOError:
            time.sleep(0.1)
            continue
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_requests_that_never_finish_arriving_are_cut_off(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(
        sqlite_url,
        tmp_path,
        # A small body counts as part of the request's arrival: header_timeout
        # cuts it off long before the (here very long) body_timeout would.
        env={"MAILBEACON_HEADER_TIMEOUT": "1", "MAILBEACON_BODY_TIMEOUT": "600"},
    )
    try:
        head = _slow(srv.port)
        body = _slow(srv.port, SLOW_BODY)
        silent = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        silent.setblocking(False)
        deadline = time.monotonic() + 30
        assert _drip_until_answered(head, b"X", deadline).startswith(b"HTTP/1.1 408")
        assert _drip_until_answered(body, b" ", deadline).startswith(b"HTTP/1.1 408")
        assert _wait_closed([silent], 1, deadline) == 1  # never spoke: just closed
        for sock in (head, body, silent):
            sock.close()
    finally:
        srv.stop()


def test_idle_keep_alive_connections_are_closed(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(sqlite_url, tmp_path, env={"MAILBEACON_KEEPALIVE_TIMEOUT": "1"})
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = b""
            while True:  # the answer, then the close once idle for 1 s
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        srv.stop()
