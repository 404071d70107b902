"""The hot path: ``GET|HEAD /o/<token>.gif`` and ``GET|HEAD /c/<token>``.

Raw ASGI, no framework: this handler runs for every pixel and click, so it
does a fixed, small amount of work and never touches the database itself.

Every path returns something a mail client can use: a pixel always gets the
GIF (a tracking image must never show broken), a click with a valid token
always gets its redirect (the destination is inside the signed token). Only
whether the hit was *recorded* varies, and ``X-Mailbeacon-Recorded`` says so:
``yes`` once committed, else ``no; reason=<why>`` (model.Unrecorded). The
first word stays ``yes`` or ``no``, so clients may compare just that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from mailbeacon import metrics
from mailbeacon.hits.clientip import ClientIP, IPStorage
from mailbeacon.hits.labeller import Admitted
from mailbeacon.hits.readpixel import ReadPixel
from mailbeacon.model import (
    CLASSIFIER_HEADERS,
    MAX_USER_AGENT,
    Event,
    Kind,
    MessageInfo,
    Unrecorded,
)
from mailbeacon.tokens import Signer, TokenError, repair_candidates

log = logging.getLogger("mailbeacon.track")


# The smallest valid image: a 1x1 transparent GIF89a, 43 bytes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
assert len(GIF) == 43

# Bounds. A real mail client sends ~1 KB of headers; Safe Links URLs and
# click tokens with long destinations stay well under 8 KB.
MAX_PATH = 8192
MAX_HEADER_BYTES = 16384

_NO_CACHE = [
    (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
_GIF_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"43"), *_NO_CACHE]
Header = tuple[bytes, bytes]
# outcome (None: committed) -> its X-Mailbeacon-Recorded header, built once
_RECORDED: dict[Unrecorded | None, Header] = {
    None: (b"x-mailbeacon-recorded", b"yes"),
    **{r: (b"x-mailbeacon-recorded", f"no; reason={r.value}".encode()) for r in Unrecorded},
}
_CLICK_HEADERS = [(b"content-length", b"0"), (b"referrer-policy", b"no-referrer"), *_NO_CACHE]


def _head(headers: list[Header]) -> bytes:
    """Header lines as they go on the wire, for WholeAnswer."""
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


# The pixel's whole header block per outcome, joined once.
_GIF_HEAD = {why: _head([*_GIF_HEADERS, recorded]) for why, recorded in _RECORDED.items()}
_CLICK_HEAD = {why: _head([*_CLICK_HEADERS, recorded]) for why, recorded in _RECORDED.items()}

# The scope extension under which the server offers WholeAnswer.
ANSWER_EXTENSION = "mailbeacon.answer"


class WholeAnswer(Protocol):
    """What the server offers for a small answer (web/server.GuardedProtocol)."""

    def answer_whole(self, scope: Scope, status: int, head: bytes, body: bytes) -> bool:
        """Send status line, default headers, ``head`` (header lines, each
        ending in CRLF) and ``body`` in one write; False: nothing was sent,
        answer through ASGI instead."""


_WANTED = frozenset(h.encode() for h in CLASSIFIER_HEADERS)

NOT_FOUND_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Link not valid</title>"
    b"<p>This tracked link is not valid. It may have been damaged when the email was "
    b"copied or forwarded; ask the sender for the link.</p>"
)


class Records(Protocol):
    """The writer as the tracking paths use it (hits/recorder.Recorder)."""

    async def record(self, event: Event) -> Unrecorded | None:
        """None once ``event`` is committed, else why it was not recorded."""


class Labels(Protocol):
    """Admission and the live label (hits/labeller.Labeller)."""

    async def admit(self, event: Event) -> Admitted: ...

    def label(self, event: Event, scope: Scope, info: MessageInfo | None) -> None: ...


class Tracker:
    """ASGI app for the tracking paths; anything else goes to ``fallback``."""

    def __init__(
        self,
        *,
        fallback: ASGIApp,
        signer: Callable[[], Signer],
        recorder: Records,
        client_ip: ClientIP,
        ip_storage: Callable[[], IPStorage],
        labeller: Labels | None = None,
        reading: ReadPixel | None = None,
    ) -> None:
        self.fallback = fallback
        self.signer = signer
        self.recorder = recorder
        self.client_ip = client_ip
        self.ip_storage = ip_storage
        self.labeller = labeller  # None: hits are recorded as they come (tests, benches)
        self.reading = reading  # the streamed pixel (read time), None: never

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/o/"):
                return await self.pixel(scope, receive, send, path)
            if path.startswith("/c/"):
                return await self.click(scope, receive, send, path)
        await self.fallback(scope, receive, send)

    # -- the two endpoints ---------------------------------------------------

    async def pixel(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        metrics.HITS_OPEN.inc()
        refusal, request = _read(scope)
        if refusal:
            return await _plain(send, *refusal)
        token = path[3:-4] if path.endswith(".gif") else path[3:]
        flags: tuple[str, ...] = ()
        try:
            verified = self.signer().verify_open(token)
        except TokenError:
            verified = None
            for candidate in repair_candidates(token):
                try:
                    verified = self.signer().verify_open(candidate)
                    flags = ("mutated",)
                    break
                except TokenError:
                    continue
        if verified is None:
            metrics.REJECTED_OPEN.inc()
            return await _gif(send, scope, Unrecorded.BAD_TOKEN)
        event = self._event(scope, request, Kind.OPEN, verified.message_id, flags)
        why = await self._record(event, scope)
        # A reader's own client, and the open is durable: measure how long
        # the message stays open (hits/readpixel.py). Budget spent: plain GIF.
        if why is None and self.reading is not None and self.reading.wants(event, scope):
            if await self.reading.serve(scope, receive, send, event, _RECORDED[None]):
                return
        await _gif(send, scope, why)

    async def click(self, scope: Scope, _receive: Receive, send: Send, path: str) -> None:
        metrics.HITS_CLICK.inc()
        refusal, request = _read(scope)
        if refusal:
            return await _plain(send, *refusal)
        token = path[3:]
        flags: tuple[str, ...] = ()
        try:
            verified = self.signer().verify_click(token)
        except TokenError:
            verified = None
            for candidate in repair_candidates(token):
                try:
                    verified = self.signer().verify_click(candidate)
                    flags = ("mutated",)
                    break
                except TokenError:
                    continue
        if verified is None:
            metrics.REJECTED_CLICK.inc()
            return await _plain(
                send, 404, NOT_FOUND_PAGE, b"text/html; charset=utf-8", Unrecorded.BAD_TOKEN
            )
        event = self._event(scope, request, Kind.CLICK, verified.message_id, flags)
        event.link_position = verified.position
        event.url = verified.url
        why = await self._record(event, scope)
        # Location must be ASCII: percent-encode anything else, keep the rest.
        location = quote(verified.url, safe="!#$%&'()*+,/:;=?@[]~-._").encode("ascii")
        if _answered(scope, 302, b"location: %s\r\n%s" % (location, _CLICK_HEAD[why]), b""):
            return
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", location), *_CLICK_HEADERS, _RECORDED[why]],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    # -- helpers -------------------------------------------------------------

    def _event(
        self,
        scope: Scope,
        request: _Headers,
        kind: Kind,
        message_id: int,
        flags: tuple[str, ...],
    ) -> Event:
        ua, forwarded, headers = request
        peer = scope["client"][0] if scope.get("client") else ""
        ip = self.client_ip.resolve(peer, forwarded)
        stored, digest = self.ip_storage().stored(ip)
        return Event(
            message_id=message_id,
            kind=kind,
            at=time.time(),
            method=scope["method"],
            ip=ip,
            user_agent=ua,
            headers=headers,
            ip_stored=stored,
            ip_hash=digest,
            token_flags=flags,
        )

    async def _record(self, event: Event, scope: Scope) -> Unrecorded | None:
        """None once the hit is committed, else why it is not recorded."""
        if self.labeller is not None:
            # Admit first: an erased or opted-out recipient's hit stores nothing.
            admitted = await self.labeller.admit(event)
            if not admitted.ok:
                metrics.UNRECORDED_BY[Unrecorded.OPTED_OUT].inc()
                return Unrecorded.OPTED_OUT
            try:
                self.labeller.label(event, scope, admitted.info)
            except Exception:
                log.exception("classifier failed; recording the hit unlabelled")
        why: Unrecorded | None = await self.recorder.record(event)
        return why


_Refusal = tuple[int, bytes, bytes]
# What an event keeps of the request headers: (user agent, X-Forwarded-For,
# the classifier's headers).
_Headers = tuple[str, str | None, dict[str, str]]
_NOT_ALLOWED: _Refusal = (405, b"Only GET and HEAD are answered here.\n", b"text/plain")
_TOO_LONG: _Refusal = (414, b"Request URI too long.\n", b"text/plain")
_HAS_BODY: _Refusal = (413, b"Tracking requests take no body.\n", b"text/plain")
_TOO_LARGE: _Refusal = (431, b"Request headers too large.\n", b"text/plain")
_NO_HEADERS: _Headers = ("", None, {})


def _read(scope: Scope) -> tuple[_Refusal | None, _Headers]:
    """One pass over the request: a reason to refuse it outright (or None;
    checked before the token) and what its event keeps of the headers."""
    if scope["method"] not in ("GET", "HEAD"):
        return _NOT_ALLOWED, _NO_HEADERS
    if len(scope.get("raw_path") or scope["path"]) > MAX_PATH:
        return _TOO_LONG, _NO_HEADERS
    size = 0
    ua = ""
    forwarded = None
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name == b"user-agent":
            ua = value.decode("latin-1")[:MAX_USER_AGENT]
        elif name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
        elif name in _WANTED:
            headers[name.decode()] = value.decode("latin-1")[:256]
        elif name == b"content-length":
            if value.strip() not in (b"0", b""):
                return _HAS_BODY, _NO_HEADERS
        elif name == b"transfer-encoding":
            return _HAS_BODY, _NO_HEADERS
    if size > MAX_HEADER_BYTES:
        return _TOO_LARGE, _NO_HEADERS
    return None, (ua, forwarded, headers)


def _answered(scope: Scope, status: int, head: bytes, body: bytes) -> bool:
    """Answered in one write by the server (WholeAnswer), if it offers that."""
    host: WholeAnswer | None = (scope.get("extensions") or {}).get(ANSWER_EXTENSION)
    return host is not None and host.answer_whole(scope, status, head, body)


async def _gif(send: Send, scope: Scope, why: Unrecorded | None) -> None:
    if _answered(scope, 200, _GIF_HEAD[why], GIF):
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_GIF_HEADERS, _RECORDED[why]],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else GIF})


async def _plain(
    send: Send,
    status: int,
    body: bytes,
    ctype: bytes,
    why: Unrecorded = Unrecorded.BAD_REQUEST,
) -> None:
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        *_NO_CACHE,
        _RECORDED[why],
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
