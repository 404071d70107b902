"""Request bodies: a size cap per route, checked before a byte is read, and a
time cap between body chunks.

FastAPI reads a whole JSON body before it runs any dependency, the API key
check included: a 1 GB body with no key took the server from 143 MB to 3.1 GB
before its 401. Here a declared ``Content-Length`` over the route's cap is
answered 413 before the app runs, and a body without one (chunked) is counted
as it arrives and cut off at the cap. The answer is the API's error shape,
``{"error", "message"}``; what the app would have said is dropped.

The tracking paths never read a body, so this wraps only the API and
dashboard app behind them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Instrumenting takes whole emails: a 60-90 KB HTML template is typical, an
# .eml with attachments a few MB; JSON escaping adds up to ~2x.
LARGE_BODY_PATHS = frozenset({"/api/v1/instrument", "/api/v1/lint"})


@dataclass(frozen=True)
class BodyLimits:
    max_body_bytes: int = 1_048_576
    max_instrument_body_bytes: int = 10_485_760
    body_timeout: float = 30.0

    def for_path(self, path: str) -> tuple[int, str]:
        if path in LARGE_BODY_PATHS:
            return self.max_instrument_body_bytes, "max_instrument_body_bytes"
        return self.max_body_bytes, "max_body_bytes"


class _Refused(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap, setting = self.limits.for_path(scope["path"])
        too_large = (
            413,
            "too_large",
            f"the request body is over {cap} bytes ({setting}); send less, "
            "or raise the setting on the server",
        )
        declared = _content_length(scope)
        if declared is None:
            return await _refuse(send, 400, "invalid", "Content-Length is not a number")
        if declared > cap:
            return await _refuse(send, *too_large)

        refusal: tuple[int, str, str] | None = None
        started = done = False
        received = 0

        async def guarded_receive() -> Message:
            nonlocal refusal, done, received
            if done:  # the body is in; later receives wait for a disconnect
                return await receive()
            try:
                async with asyncio.timeout(self.limits.body_timeout):
                    message = await receive()
            except TimeoutError:
                refusal = (
                    408,
                    "timeout",
                    f"the request body stalled for {self.limits.body_timeout:g} s "
                    "(body_timeout); send it without pauses",
                )
                raise _Refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    refusal = too_large
                    raise _Refused
                done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is not None:
                return  # the app's answer to a body it could not read is replaced below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not started:
            await _refuse(send, *refusal)


def _content_length(scope: Scope) -> int | None:
    """The declared length, 0 when there is none, None when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return 0


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    # No "connection: close": the server (web/server.py) half-closes and
    # drains what the client still sends for a moment, so the client reads
    # this answer instead of a reset.
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
