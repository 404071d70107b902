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
import re
import ssl
import time
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailbeacon.relay import accounts
from mailbeacon.relay.submit import Early, Relay
from mailbeacon.relay.upstream import LF_DOT
from mailbeacon.store import accounts as throttle
from mailbeacon.store import outgoing
from mailbeacon.store.db import is_store_down
from mailbeacon.store.senders import Sender

log = logging.getLogger("mailbeacon.relay")

READ_BLOCK = 64 * 1024  # bytes per read of a message's DATA
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


def _long_line(buf: bytearray, start: int, stop: int, most: int) -> bool:
    """Whether a line of ``buf[start:stop]`` (whole LF-ended lines; ``start``
    follows a LF) is longer than ``most`` bytes before its LF.

    Only a window of ``step`` bytes with no LF in it can be inside such a
    line, and every such line holds a whole window: one ``find`` per window
    (~170 for 82 KB) instead of a look at every line (a regex or a split
    took 1.5 ms of the event loop per message on the loaded bench machine;
    ``find`` from each window's start, one call per 78-byte line, 0.4 ms)."""
    step = (most + 1) // 2
    pos = start
    while pos + step <= stop:
        # The window's last LF: every line that starts before it ends in it.
        lf = buf.rfind(b"\n", pos, pos + step)
        if lf >= 0:
            pos = lf + 1
            continue
        line_start = buf.rfind(b"\n", start - 1, pos) + 1
        line_end = buf.find(b"\n", pos + step, stop)
        if (stop if line_end < 0 else line_end) - line_start > most:
            return True
        pos = stop if line_end < 0 else line_end + 1
    return False


# The address in almost every MAIL and RCPT: <dot-atom@domain>, ASCII.
_SIMPLE_ADDR = re.compile(
    r"<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
)


async def read_data(
    reader: asyncio.StreamReader, size_limit: int | None, line_limit: int
) -> bytes | str | None:
    """The message after DATA up to the lone "." line, dot-stuffing undone
    (RFC 5321 4.5.2); a refusal (str) when a line or the message is too long;
    None when the connection closed first.

    Lines end at CRLF (what aiosmtpd splits on). Anything the client sent
    after the terminator (it may not: we do not offer PIPELINING) goes back
    into the reader for the command loop."""
    # A CRLF in front: the terminator is then always CRLF "." CRLF, and so is
    # a stuffed dot, on the first line too.
    buf = bytearray(b"\r\n")
    done = 0  # buf[:done] is checked: complete lines, no terminator
    dots = 0  # stuffed dots in buf[:done] (they do not count against the size)
    too_long = too_big = False
    while True:
        block = await reader.read(READ_BLOCK)
        if not block:
            return None
        buf += block
        end = buf.find(b"\r\n.\r\n", max(0, done - 2))
        # buf[done:lines] is complete lines not yet checked (all of them up to
        # the terminator); done follows a LF, so "LF ." pairs are counted once.
        lines = end + 2 if end >= 0 else buf.rfind(b"\n") + 1
        if not (too_long or too_big):
            # CRLF-ended line content may be line_limit bytes: +1 for the CR.
            too_long = (end < 0 and len(buf) - lines > line_limit + 1) or _long_line(
                buf, max(done, 2), lines, line_limit + 1
            )
            # Most messages have no stuffed dot: a search that stops at the
            # first is half the time of a count through the whole block.
            if LF_DOT.search(buf, max(done - 1, 0), lines) is not None:  # faster than find
                dots += buf.count(b"\n.", max(done - 1, 0), lines)
            size = (lines if end >= 0 else len(buf)) - 2 - dots
            too_big = bool(size_limit) and size > (size_limit or 0)
        if end >= 0:
            rest = bytes(buf[end + 5 :])
            if rest:  # pipelined anyway: give it back to the command loop
                reader._buffer[0:0] = rest  # type: ignore[attr-defined]
            del buf[end + 2 :]
            break
        if too_long or too_big:  # read on to the terminator, holding nothing
            buf = buf[-4:]  # a terminator may have begun in them
            done = 0
            continue
        done = lines
    if too_long:
        return "500 Line too long (see RFC5321 4.5.3.1.6)"
    if too_big:
        return "552 5.3.4 message larger than the relay takes"
    if dots:
        buf = buf.replace(b"\r\n.", b"\r\n")
    del buf[:2]
    return bytes(buf)


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

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's, without the ``typing.Protocol`` class it defines on every
        call, and with a regex for the plain ``<user@example.com>``: the
        class and the email package's parser took 1.5 ms of the event loop
        per MAIL or RCPT on the loaded bench machine (py-spy, docs/benchmarks.md)."""
        if not arg:
            return "", ""
        simple = _SIMPLE_ADDR.match(arg)
        if simple is not None:  # what the parser below returns for it, 20x faster
            addr, rest = simple.group(1), arg[simple.end() :].lstrip(" \t")
        else:
            try:
                parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
                parsed, rest = parse(arg)
            except HeaderParseError:
                return None, None
            addr = parsed.addr_spec
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading into one buffer, a block at a time.

        aiosmtpd keeps every line as its own bytearray (~60 bytes of overhead
        per 78-byte line) and then joins them: 2.7x the message at its peak,
        98 MB for a 25 MB attachment. One growing buffer costs 1x, and 2x for
        the moment it becomes bytes. Reading line by line (one ``readuntil``
        per 78-byte line) cost 4 ms of the event loop per 82 KB message on
        the loaded bench machine; blocks of 64 KB are checked in C instead
        (the terminator, line lengths, dot-stuffing)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        # The copies' envelopes go upstream while the message arrives.
        early = self.relay_handler.begin(self.session, self.envelope)
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            got = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
            if got is None:  # the client went away mid-message
                return
            if isinstance(got, str):
                await self.push(got)
                self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: untyped
                return
            self.envelope.content = self.envelope.original_content = got
            del got
            self.envelope.relay_early = early  # type: ignore[attr-defined]  # for handle_DATA
            status = await self._call_handler_hook("DATA")
        finally:
            if early is not None:  # a no-op once its copies were handed over
                early.abandon()
        self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd: untyped
        await self.push(status)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
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


# A hook that fails (the store down, a bug) answers 451: the client keeps
# the message and sends it again, as it does for any 4xx. aiosmtpd's own
# answer would be "500 Error: (OperationalError) ..." - permanent, so the
# client would give the message up, and with the driver's words in it.
STORE_DOWN = "451 4.3.0 mailbeacon cannot reach its database just now; send again later"
FAILED = "451 4.3.0 mailbeacon could not take this command; send again later"


def try_later(error: BaseException) -> str:
    """The reply to a hook that raised ``error``, logged on the server's side."""
    if is_store_down(error):
        log.error("relay: the store failed: %s", str(error).splitlines()[0])
        return STORE_DOWN
    log.error("relay: a command failed", exc_info=error)
    return FAILED


class Handler:
    """aiosmtpd hooks: MAIL, RCPT and DATA checks, then the submission."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.engine = relay.engine
        self.settings = relay.settings

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's hook for any other hook that raised (AUTH, MAIL, RCPT)."""
        return try_later(error)

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

    async def handle_EHLO(
        self, server: Submission, session: Session, _env: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if server.auth_allowed():
            return responses
        return [r for r in responses if not r[4:].upper().startswith("AUTH")]

    async def handle_MAIL(
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

    async def handle_RCPT(
        self, _server: Submission, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:  # fmt: skip
        budget = getattr(session, "relay_budget", None)
        if budget is not None and len(envelope.rcpt_tos) >= budget:
            return "450 4.7.1 hourly copy limit of this sender reached; try later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    def begin(self, session: Session | None, envelope: Envelope) -> Early | None:
        """At DATA, before the message: the copies' envelopes (Relay.begin)."""
        if session is None or session.auth_data is None:
            return None
        return self.relay.begin(
            cast(Sender, session.auth_data), envelope.mail_from or "",
            list(envelope.rcpt_tos), list(envelope.mail_options),
        )  # fmt: skip

    async def handle_DATA(self, _server: Submission, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # Drop aiosmtpd's references: the submission is the only full copy kept.
        envelope.original_content = envelope.content = None
        try:
            return await self.relay.submit(
                cast(Sender, session.auth_data), envelope.mail_from or "",
                list(envelope.rcpt_tos), list(envelope.mail_options), raw,
                getattr(envelope, "relay_early", None),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - answered here, so DATA ends as usual
            return try_later(exc)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
