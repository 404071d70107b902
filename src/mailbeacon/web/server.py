"""The HTTP connection's own limits, enforced where the bytes arrive.

uvicorn's httptools protocol buffers a request's headers without bound (a
200 MB header line took the server from 94 to 494 MB before the app saw it),
waits for them forever, and takes every connection it is offered (1,100 slow
connections made the pixel unreachable). This protocol adds, per server:

- ``max_header_bytes``: bytes of request line + headers; more is answered
  431 and the connection closed, counted before the parser buffers them.
- ``header_timeout``: seconds from a connection's first byte (or its opening)
  to the end of its headers, and of its body up to 64 KB (the app starts
  only then); slower is closed (408 when a request had begun).
- ``keepalive_timeout``: seconds an idle kept-alive connection is kept.
- ``max_connections``: open connections. At the cap a new connection does not
  get refused: the connection that has waited longest *without a request
  being answered* is closed to make room, the way nginx reuses its idle
  keep-alive connections. Waiting are: idle kept-alive connections, requests
  whose headers or body have not all arrived, and answers the client is not
  reading (the socket's buffers are full). A slow client can therefore only
  push out other slow or idle clients, never a request being answered, and a
  real client, whose request arrives within a millisecond of connecting, is
  always the newest in that line.

A streamed pixel (hits/readpixel.py: up to ``read_time_cap`` seconds of an
animated GIF, to measure read time) leaves ``max_connections`` when it
starts streaming: it is counted in ``streams`` instead, which the app bounds
with ``read_time_streams``. So a full budget of streams never takes a slot
an ordinary pixel or click needs, and ``header_timeout`` never cuts a
stream (it only times requests still arriving). On shutdown, streams are
told to end at once instead of holding the graceful shutdown.

The pixel's and the click's answers are small and made of constants: the
tracking paths hand them over whole (``answer_whole``), written in one
socket write instead of ASGI's two sends, each of which checks every header
again; anything else, and any answer that cannot go at once, takes ASGI's
way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from mailbeacon import metrics
from mailbeacon.hits.readpixel import STREAM_EXTENSION
from mailbeacon.hits.track import ANSWER_EXTENSION


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int = 65536
    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000


class Guard:
    """What all connections of one server share: the count and the waiting line."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.open = 0
        self.streams = 0  # connections streaming a pixel: not in ``open``
        # Connections not being answered (idle, still arriving, or not reading
        # their answer), longest waiting first: dicts keep insertion order, so
        # the first to make room is next(iter(...)), O(1).
        self.waiting: dict[GuardedProtocol, None] = {}
        self.refused: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._sweeping = False

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        """Check the requests still arriving for header_timeout, a few times a second.

        One sweep over the waiting line instead of a timer per request: a
        timer armed and cancelled for every request cost the pixel ~5 % of
        its throughput; a sweep of 1,000 waiting connections costs ~0.1 ms.
        """
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self._every(), self._sweep, loop)

    def _every(self) -> float:
        return min(SWEEP_SECONDS, self.limits.header_timeout / 4)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        too_old = loop.time() - self.limits.header_timeout
        for p in [p for p in self.waiting if p.since is not None and p.since < too_old]:
            p.took_too_long()
        loop.call_later(self._every(), self._sweep, loop)

    def make_room(self, newcomer: GuardedProtocol) -> bool:
        """Close waiting connections until ``newcomer`` fits; False if none could go."""
        while self.open > self.limits.max_connections:
            victim = next((p for p in self.waiting if p is not newcomer), None)
            if victim is None:
                return False
            self.refused["evicted"] += 1
            victim.drop()
        return True


REASONS = ("header_too_large", "header_timeout", "evicted", "over_capacity")
SWEEP_SECONDS = 0.5  # header_timeout is kept to within this


class GuardedProtocol(HttpToolsProtocol):
    guard: Guard  # set on the subclass protocol_class() makes

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._counted = False
        self._in_headers = True  # bytes that arrive now belong to a request's head
        self._head_bytes = 0
        # loop.time() when the request now arriving began (its first byte, or the
        # connection's opening); None while none is arriving. Guard._sweep reads it.
        self.since: float | None = None
        self._timer: asyncio.TimerHandle | None = None  # the lingering close
        self._lingering = False
        # A request whose app has not been started yet: see _start_asgi_task.
        self._deferred: tuple[Any, Any] | None = None
        self._stop_stream: Callable[[], None] | None = None  # set while streaming

    # -- connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        guard.open += 1
        self._counted = True
        self._wait()
        self.since = self.loop.time()
        guard.start_sweeping(self.loop)
        if not guard.make_room(self):
            guard.refused["over_capacity"] += 1
            self._reply_and_close(503, b"Too many connections; try again shortly.\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def drop(self) -> None:
        """Close without a word (an idle or unfinished connection made way)."""
        self._release()
        if self.flow is not None and self.flow.write_paused:
            self.transport.abort()  # close() would wait to flush to a client that does not read
        elif not self.transport.is_closing():
            self.transport.close()

    def _release(self) -> None:
        self._disarm_timer()
        self._deferred = None
        self.since = None
        self.guard.waiting.pop(self, None)
        if self._counted:
            self._counted = False
            self.guard.open -= 1
        if self._stop_stream is not None:
            self._stop_stream = None
            self.guard.streams -= 1

    # -- streamed pixels (hits/readpixel.StreamHost) ------------------------------

    def stream_started(self, stop: Callable[[], None]) -> None:
        """This connection streams a pixel now: out of ``open``, into ``streams``.
        It is sent with ``connection: close``, so it never comes back."""
        if self._stop_stream is not None:
            return
        if self._counted:
            self._counted = False
            self.guard.open -= 1
        self._stop_stream = stop
        self.guard.streams += 1

    def shutdown(self) -> None:
        if self._stop_stream is not None:
            self._stop_stream()  # the stream ends now; the connection then closes
        super().shutdown()

    def _wait(self) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.waiting[self] = None

    # -- bytes -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._head_bytes += len(data)  # read and dropped, never parsed
            if self._head_bytes > LINGER_BYTES:
                self.drop()
            return
        if self._in_headers:
            self._head_bytes += len(data)
            if self.since is None:  # the first byte of a request on a kept-alive connection
                self.since = self.loop.time()
        super().data_received(data)
        # Checked after feeding: one read is at most ~256 KB, so the parser
        # never holds more than the limit plus one read, and a chunk that
        # carries small headers and a large body start is not mistaken.
        if (
            self._in_headers
            and self._head_bytes > self.guard.limits.max_header_bytes
            and not self.transport.is_closing()
        ):
            self.guard.refused["header_too_large"] += 1
            self._reply_and_linger(431, b"Request header fields too large.\n")

    def on_headers_complete(self) -> None:
        self._in_headers = False
        offered: Any = {STREAM_EXTENSION: self, ANSWER_EXTENSION: self}
        self.scope["extensions"] = offered
        super().on_headers_complete()

    # -- whole answers (hits/track.WholeAnswer) ------------------------------------

    def answer_whole(self, scope: Any, status: int, head: bytes, body: bytes) -> bool:
        """Write a small answer, status line to body, in one write; False if
        it must go through ASGI's send instead (nothing was written then).

        What uvicorn's two sends do for an answer with a content-length, less
        their per-header checks (``head`` is built once, from constants), and
        one socket write instead of two: the pixel and the click answer this
        way. Only when the answer can go at once: the request is the one being
        answered (not one pipelined behind it) and the client reads what it
        is sent; otherwise send() waits for it, as for any answer.
        """
        cycle = self.cycle
        if (
            cycle is None
            or cycle.scope is not scope
            or cycle.response_started
            or cycle.disconnected
            or self.flow.write_paused
        ):
            return False
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(head)
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if scope["method"] != "HEAD":
            parts.append(body)
        self.transport.write(b"".join(parts))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()
        return True

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """Start the app only once the request is in, or START_BODY_BYTES of its body.

        A client that drips a body would otherwise have the app routed and
        waiting for it: ~0.3 ms of work per connection, and at the cap,
        where each one closed is reopened at once, that churn is what raised
        the pixel's p99 (to ~1 s with 1,000 of them). Until the app starts,
        the request is still arriving: header_timeout applies and it is
        first in line to make room. A client that asked to be told to go on
        (Expect: 100-continue) is answered by the app, so it starts at once.
        """
        if not self._in_headers and not cycle.waiting_for_100_continue:
            self._deferred = (cycle, app)
            return
        self.since = None
        super()._start_asgi_task(cycle, app)

    def _start_deferred(self) -> None:
        if self._deferred is not None:
            cycle, app = self._deferred
            self._deferred = None
            self.since = None
            super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._deferred is not None and len(self.cycle.body) >= START_BODY_BYTES:
            self._start_deferred()  # a large body: the app streams the rest

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # what comes next is the next request's head
        self._head_bytes = 0
        self.guard.waiting.pop(self, None)  # all in: now it is being answered
        self._start_deferred()

    def pause_writing(self) -> None:
        super().pause_writing()
        if not self.transport.is_closing():
            self._wait()  # the client is not reading its answer

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._answering():
            self.guard.waiting.pop(self, None)

    def _answering(self) -> bool:
        """The whole request is in and its answer is not finished."""
        return self._in_headers and self.cycle is not None and not self.cycle.response_complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._in_headers and not self.transport.is_closing():
            # Answered before the body was all read (a 413, a 401 to a large
            # POST): nothing more will be parsed on this connection.
            self._linger()
            return
        if not self._answering() and not self.transport.is_closing():  # (a pipelined one is)
            self._wait()  # idle until the next request: first in line to make room

    # -- time ----------------------------------------------------------------------

    def took_too_long(self) -> None:
        """header_timeout passed while the request was still arriving."""
        self.since = None
        if self.transport.is_closing():
            return
        self.guard.refused["header_timeout"] += 1
        if self._head_bytes or self._deferred is not None:
            self._deferred = None
            self._reply_and_linger(408, b"Request took too long to arrive.\n")
        else:
            self.drop()  # opened and never spoke: nothing to answer

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _reply_and_close(self, status: int, body: bytes) -> None:
        self.transport.write(_plain(status, body))
        self.drop()

    def _reply_and_linger(self, status: int, body: bytes) -> None:
        self.transport.write(_plain(status, body))
        self._linger()

    def _linger(self) -> None:
        """Half-close and drop what still arrives, for a moment, then close.

        Closing a socket with unread bytes makes the kernel send a reset,
        which can destroy the answer just written before the client reads
        it; so, like nginx's lingering close, the write side is shut first
        and the rest read and thrown away for up to LINGER_SECONDS.
        """
        self._unset_keepalive_if_required()
        self._lingering = True
        self.since = None
        self._head_bytes = 0
        self._disarm_timer()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.drop)
        self.flow.resume_reading()
        self._wait()  # nothing of value left here: first to make room


# uvicorn buffers this much of a body before it pauses reading for the app.
START_BODY_BYTES = HIGH_WATER_LIMIT
# After an early answer: how long and how much to keep reading before the close.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


def _plain(status: int, body: bytes) -> bytes:
    phrase = {
        408: b"Request Timeout",
        431: b"Request Header Fields Too Large",
        503: b"Service Unavailable",
    }[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, phrase, len(body), body)
    )


_guards: list[Guard] = []  # of this process's servers, for /metrics


def protocol_class(limits: ServerLimits) -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with its own Guard."""
    guard = Guard(limits)
    _guards.append(guard)
    return type("Guarded", (GuardedProtocol,), {"guard": guard})


class _Collector:
    def collect(self) -> Iterator[Metric]:
        closed = CounterMetricFamily(
            "mailbeacon_http_closed",
            "Connections closed by a server limit (header size or time, room for others)",
            labels=["reason"],
        )
        for reason in REASONS:
            closed.add_metric([reason], sum(g.refused[reason] for g in _guards))
        yield closed
        yield GaugeMetricFamily(
            "mailbeacon_http_connections",
            "Open HTTP connections (streamed pixels not included: mailbeacon_read_streams)",
            value=sum(g.open for g in _guards),
        )


metrics.REGISTRY.register(_Collector())


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """The uvicorn.Config arguments that carry these limits."""
    return {
        "http": protocol_class(limits),
        "timeout_keep_alive": limits.keepalive_timeout,
        # Nothing here speaks WebSocket; an Upgrade is just a header.
        "ws": "none",
    }
