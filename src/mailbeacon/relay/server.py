"""The SMTP submission server (aiosmtpd): AUTH, who may send what, limits.

Never an open relay:
* nothing without AUTH (530); a wrong password is 535, answered after a
  second, and after 5 failures per login and address in 5 minutes every
  try is refused for the rest of the window (the dashboard's rule and table);
* AUTH over plaintext only from loopback; elsewhere 538 (and AUTH is not
  even advertised there until STARTTLS);
* the envelope sender must be one of the sender's addresses (550 at MAIL),
  and so must every From: address (550 after DATA, in submit.py);
* per-sender copies per hour (450 at RCPT: the client tries again later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from typing import Any, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailbeacon.relay import accounts
from mailbeacon.relay.submit import Relay
from mailbeacon.store import accounts as throttle
from mailbeacon.store import outgoing
from mailbeacon.store.senders import Sender

log = logging.getLogger("mailbeacon.relay")

AUTH_FAIL_DELAY = 1.0  # seconds before a 535: a guess per second per connection at most
_CAPTURE = "mailbeacon-capture"


def is_loopback(peer: Any) -> bool:
    """Whether an asyncio peername is this machine (IPv4, IPv6, v4-mapped v6)."""
    try:
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        addr = ipaddress.ip_address(str(host).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _capture(_server: SMTP, _session: Session, _env: Envelope, _mech: str, data: Any) -> AuthResult:
    """aiosmtpd calls its authenticator synchronously; scrypt takes ~50 ms, so
    the check runs in a thread in ``Submission._verify`` instead."""
    return AuthResult(success=True, auth_data=(_CAPTURE, data))


class Submission(SMTP):
    """aiosmtpd's SMTP with our AUTH rules."""

    def __init__(self, handler: Handler, **kw: Any) -> None:
        super().__init__(
            handler,
            auth_required=True,
            auth_require_tls=False,  # our own rule in smtp_AUTH: loopback or TLS
            authenticator=_capture,
            enable_SMTPUTF8=True,
            **kw,
        )
        self.relay_handler = handler

    def encrypted(self) -> bool:
        if self._tls_protocol is not None:
            return True
        return (
            self.transport is not None and self.transport.get_extra_info("sslcontext") is not None
        )

    def auth_allowed(self) -> bool:
        return self.encrypted() or (self.session is not None and is_loopback(self.session.peer))

    async def smtp_AUTH(self, arg: str) -> None:
        if self.session is not None and self.session.host_name and not self.auth_allowed():
            await self.push(
                "538 5.7.11 Encryption required for requested authentication mechanism "
                "(STARTTLS first)"
            )
            return
        await super().smtp_AUTH(arg)

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        """aiosmtpd's DATA, reading into one buffer.

        aiosmtpd keeps every line as its own bytearray (~60 bytes of overhead
        per 78-byte line) and then joins them: 2.7x the message at its peak,
        98 MB for a 25 MB attachment. One growing buffer costs 1x, and 2x for
        the moment it becomes bytes."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        buf = bytearray()
        limit = self.data_size_limit
        too_long = too_big = False
        partial = False  # the previous read ended mid-line (over the line limit)
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:
                too_long = True
                line = await self._reader.read(exc.consumed)
            if not partial and line == b".\r\n":
                break
            complete = line.endswith(b"\r\n")
            if not (too_long or too_big):
                if limit and len(buf) + len(line) > limit:
                    too_big = True
                    buf = bytearray()
                else:
                    # RFC 5321 4.5.2: a leading "." was doubled by the client.
                    buf += line[1:] if not partial and line.startswith(b".") else line
            partial = not complete
        if too_long or too_big:
            await self.push(
                "500 Line too long (see RFC5321 4.5.3.1.6)" if too_long
                else "552 5.3.4 message larger than the relay takes"
            )  # fmt: skip
            self._set_post_data_state()
            return
        content = bytes(buf)
        del buf
        self.envelope.content = self.envelope.original_content = content
        del content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, got: AuthResult) -> AuthResult:
        data = got.auth_data
        if not got.success or not (isinstance(data, tuple) and data[0] == _CAPTURE):
            return got
        creds: LoginPassword = data[1]
        login = creds.login.decode("utf-8", "replace").strip().lower()
        password = creds.password.decode("utf-8", "replace")
        ip = str(self.session.peer[0]) if self.session and self.session.peer else ""
        sender = await self.relay_handler.authenticate(login, password, ip)
        if sender is None:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=sender)


class Handler:
    """aiosmtpd hooks: MAIL, RCPT and DATA checks, then the submission."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.engine = relay.engine
        self.settings = relay.settings

    async def authenticate(self, login: str, password: str, ip: str) -> Sender | None:
        key = "smtp:" + login
        wait = await self.relay.run(throttle.login_blocked_for, self.engine, key, ip)
        if wait > 0:
            await asyncio.sleep(AUTH_FAIL_DELAY)
            return None
        sender = await self.relay.run(accounts.authenticate, self.engine, login, password)
        if sender is None:
            await self.relay.run(throttle.record_failure, self.engine, key, ip)
            await asyncio.sleep(AUTH_FAIL_DELAY)
        return sender

    async def handle_EHLO(  # noqa: N802
        self, server: Submission, session: Session, _env: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if server.auth_allowed():
            return responses
        return [r for r in responses if not r[4:].upper().startswith("AUTH")]

    async def handle_MAIL(  # noqa: N802
        self, _server: Submission, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:  # fmt: skip
        sender = cast(Sender, session.auth_data)
        if address.strip().lower() not in sender.addresses:
            return (
                f"550 5.7.1 {address} is not an address of {sender.email}; "
                f"add it with `mailbeacon senders set {sender.email} --also {address}`"
            )
        limit = self.settings.relay_rate_per_hour if sender.rate_per_hour is None else (
            sender.rate_per_hour
        )  # fmt: skip
        used = 0
        if limit:
            since = time.time() - 3600
            used = await self.relay.run(outgoing.copies_since, self.engine, sender.id, since)
            if used >= limit:
                return f"450 4.7.1 {sender.email} sent {limit} copies in the last hour; try later"
        session.relay_budget = (limit - used) if limit else None  # type: ignore[attr-defined]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802
        self, _server: Submission, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:  # fmt: skip
        budget = getattr(session, "relay_budget", None)
        if budget is not None and len(envelope.rcpt_tos) >= budget:
            return "450 4.7.1 hourly copy limit of this sender reached; try later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, _server: Submission, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        # Drop aiosmtpd's references: the submission is the only full copy kept.
        envelope.original_content = envelope.content = None
        return await self.relay.submit(
            cast(Sender, session.auth_data), envelope.mail_from or "", list(envelope.rcpt_tos),
            list(envelope.mail_options), raw,
        )  # fmt: skip


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
