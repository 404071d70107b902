"""Webhook receivers for tests: HTTP servers on 127.0.0.1 that record what
they get, and answer well or badly on purpose."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """An HTTP server on 127.0.0.1 answering 500 to the first ``fail`` POSTs
    (``fail=-1``: to every POST)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.monotonic() of each POST accepted
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                me.calls += 1
                if me.fail < 0 or me.calls <= me.fail:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                me.times.append(time.monotonic())
                me.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return [json.loads(body) for _, body in self.received]

    def wait_calls(self, n: int, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.calls < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.calls

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class BadReceiver:
    """A receiver that misbehaves on purpose, on a raw socket:

    - ``drip``: answers 200 with a long body, one byte every ``every`` seconds;
    - ``silent``: reads the request and never answers;
    - ``bomb``: answers 200 with ``Content-Encoding: gzip`` and a small gzip
      body that inflates to ``inflated`` bytes of zeros.
    """

    def __init__(self, mode: str, every: float = 0.5, inflated: int = 200 * 2**20) -> None:
        import gzip
        import socket

        self.mode = mode
        self.every = every
        self.connections = 0
        self._stop = threading.Event()
        self._bomb = b""
        if mode == "bomb":
            self._bomb = gzip.compress(b"\0" * inflated, compresslevel=9)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)  # the request (small; its body need not be complete)
                if self.mode == "silent":
                    self._stop.wait()
                elif self.mode == "drip":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                    while not self._stop.wait(self.every):
                        conn.sendall(b"x")
                else:
                    conn.sendall(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Encoding: gzip\r\n"
                        b"Content-Type: text/plain\r\n"
                        + f"Content-Length: {len(self._bomb)}\r\n\r\n".encode()
                        + self._bomb
                    )
                    self._stop.wait(5)
            except OSError:
                pass  # the client hung up: what a receiver should see

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
