"""The streamed pixel: how long a direct reader keeps the message open.

For a hit labelled ``human_direct`` (the reader's own mail client), once the
open is committed, the pixel is answered as an animated GIF: the first frame
at once (already a complete 1x1 transparent image), then one frame a second
until the client drops the connection (the message was closed) or
``read_time_cap`` passes. The connection's life is the read time; it is
queued to the writer (Recorder.read_time), which sets ``read_seconds`` on the
event. Everything else (proxies, prefetchers, scanners, HEAD, hits not
recorded) gets the plain GIF at once, as before. docs/read-time.md.

Bounded twice: at most ``read_time_streams`` at once in this process (past
it, the plain GIF), and on ``serve`` a streaming connection leaves the
server's ordinary connection count (web/server.py), so a flood of streams
never takes a slot an ordinary pixel or click needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send

from mailbeacon import metrics, readtime
from mailbeacon.model import Event

log = logging.getLogger("mailbeacon.track")

# The scope extension under which the server offers StreamHost.
STREAM_EXTENSION = "mailbeacon.stream"

_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
    # One stream, one connection: it is not reused, so the server never has
    # to count it back in among its ordinary connections.
    (b"connection", b"close"),
    # nginx buffers a proxied answer unless told not to: the frames must reach
    # the reader as they are sent, and its close must reach us (docs/read-time.md).
    (b"x-accel-buffering", b"no"),
]


def renders_images(accept: str) -> bool:
    """Whether the request came from an engine that displays the image.

    Rendering engines ask for an image by name when they load an ``<img>``
    (Chromium ``image/avif,image/webp,...``, WebKit as in Apple Mail
    ``image/webp,...,image/*;q=0.8``, Gecko as in Thunderbird
    ``image/avif,image/webp,*/*``); HTTP libraries and scripts send ``*/*`` or
    nothing. Only the former keep a connection open while a message is on
    screen, and a script reading the whole body must not wait out the cap,
    so everything else gets the plain GIF (read time unknown)."""
    return "image/" in accept.lower()


def _accept(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"accept":
            return str(value.decode("latin-1"))
    return ""


class StreamHost(Protocol):
    """What the server offers a streamed answer (web/server.GuardedProtocol)."""

    def stream_started(self, stop: Callable[[], None]) -> None:
        """This connection streams now: count it apart; call ``stop`` to end
        the stream early (the server is shutting down)."""


class ReadPixel:
    def __init__(self, *, recorder: Any, enabled: bool, cap: float, budget: int) -> None:
        self.recorder = recorder
        self.enabled = enabled and cap > 0 and budget > 0
        self.cap = cap
        self.budget = budget
        self.open = 0

    def wants(self, event: Event, scope: Scope) -> bool:
        """A committed open from a reader's own client, fetched with GET by an
        engine that renders images."""
        return (
            self.enabled
            and event.label in readtime.MEASURABLE
            and event.id is not None
            and scope["method"] == "GET"
            # An answer of unknown length is chunked: HTTP/1.0 has no chunks.
            and scope.get("http_version", "1.1") != "1.0"
            # From the request itself: the event's headers are dropped once
            # it is committed (hits/memory.py keeps hits small).
            and renders_images(_accept(scope))
        )

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        event: Event,
        recorded: tuple[bytes, bytes],
    ) -> bool:
        """Stream the pixel; False (nothing sent) when the budget is spent."""
        if self.open >= self.budget:
            metrics.READ_STREAMS_REFUSED.inc()
            return False
        self.open += 1
        metrics.READ_STREAMS.set(self.open)
        try:
            seconds = await self._stream(scope, receive, send, recorded)
        finally:
            self.open -= 1
            metrics.READ_STREAMS.set(self.open)
        if seconds is not None and event.id is not None:
            self.recorder.read_time(event.id, seconds)
        return True

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, recorded: tuple[bytes, bytes]
    ) -> float | None:
        """Send frames until the client leaves or the cap; the seconds it stayed
        (None when the server ended it: shutting down is not the reader's doing)."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[str] = loop.create_future()
        closed_at: list[float] = []

        def finish(why: str) -> None:
            if not ended.done():
                if why == "closed":
                    closed_at.append(loop.time())
                ended.set_result(why)

        host: StreamHost | None = (scope.get("extensions") or {}).get(STREAM_EXTENSION)
        if host is not None:
            host.stream_started(lambda: finish("stopped"))
        await send({"type": "http.response.start", "status": 200, "headers": [*_HEADERS, recorded]})
        await send({"type": "http.response.body", "body": readtime.HEAD + readtime.FRAME,
                    "more_body": True})  # fmt: skip
        metrics.READ_FRAMES.inc()
        started = loop.time()
        deadline = started + self.cap
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(lambda _t: finish("closed"))
        frames = 1
        try:
            while True:
                next_at = min(started + frames * readtime.FRAME_SECONDS, deadline)
                await asyncio.wait([ended], timeout=max(0.0, next_at - loop.time()))
                if ended.done():
                    break
                if loop.time() >= deadline:
                    finish("cap")
                    break
                await send({"type": "http.response.body", "body": readtime.FRAME,
                            "more_body": True})  # fmt: skip
                frames += 1
                metrics.READ_FRAMES.inc()
        finally:
            watcher.cancel()
        why = ended.result()
        if why != "closed":  # the end of the image: the client sees it complete
            await send({"type": "http.response.body", "body": readtime.TRAILER})
        if why == "cap":
            return self.cap
        if why == "closed":
            return min(closed_at[0] - started, self.cap)
        return None


async def _until_disconnect(receive: Receive) -> None:
    """Return when the client has gone (the request itself has no body)."""
    while (await receive())["type"] != "http.disconnect":
        pass
