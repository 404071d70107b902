"""The HTTP floor: Python servers that answer a tracking path and do nothing else.

How fast can a Python process answer ``GET /o/<token>.gif`` with the 43-byte
GIF (or ``GET /c/<token>`` with a 302) when it records nothing, labels
nothing and checks nothing? That bounds what any tracking server built on
the same HTTP layer can reach, so bench/pixel measures it beside nginx and
mailbeacon (issue 16: "a server is chosen by numbers"):

- ``asgi``: an ASGI app of two ``send`` calls, served by uvicorn with the
  options ``mailbeacon serve`` uses (uvloop, httptools): the cost of the
  ASGI server and its interface alone.
- ``raw``: an ``asyncio.Protocol`` on uvloop that parses with httptools (the
  parser uvicorn uses) and writes a prepared answer from a task per request:
  what is left of the Python HTTP layer without the ASGI interface.

Neither is a server anyone should deploy: the raw one has no limits, no
timeouts, no keep-alive rules. Run (the harness does this for you):

    uvicorn bench.peers.floor:app --loop uvloop --http httptools --port 8001
    python bench/peers/floor.py raw 8001
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = b"no-store, no-cache, must-revalidate, private"
PIXEL_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", b"43"),
    (b"cache-control", NO_CACHE),
]
CLICK_HEADERS = [
    (b"location", b"https://example.com/a"),
    (b"content-length", b"0"),
    (b"cache-control", NO_CACHE),
]


async def app(scope: dict[str, Any], _receive: Any, send: Any) -> None:
    """The ASGI floor: the pixel for /o/, a redirect for anything else."""
    if scope["type"] != "http":
        return
    pixel = scope["path"].startswith("/o/")
    await send(
        {
            "type": "http.response.start",
            "status": 200 if pixel else 302,
            "headers": PIXEL_HEADERS if pixel else CLICK_HEADERS,
        }
    )
    await send({"type": "http.response.body", "body": GIF if pixel else b""})


def _answer(status: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    head = b"".join(b"%s: %s\r\n" % h for h in headers)
    return b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n" + body


PIXEL_ANSWER = _answer(b"200 OK", PIXEL_HEADERS, GIF)
CLICK_ANSWER = _answer(b"302 Found", CLICK_HEADERS, b"")


class RawProtocol(asyncio.Protocol):
    """The raw floor: httptools callbacks, one task per request, one write."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # noqa: BLE001 - a malformed request: hang up, like the floor it is
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        # A task per request, as a server that awaits a commit needs one.
        asyncio.get_running_loop().create_task(self._respond(self.url))

    async def _respond(self, url: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(PIXEL_ANSWER if url.startswith(b"/o/") else CLICK_ANSWER)


async def _serve_raw(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "raw":
        sys.exit("usage: python bench/peers/floor.py raw PORT")
    import uvloop

    uvloop.run(_serve_raw(int(sys.argv[2])))
