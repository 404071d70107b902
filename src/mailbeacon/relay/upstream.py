"""The SMTP client to a sender's own outgoing server (blocking: run in a thread).

smtplib, not aiosmtplib: both build the whole dot-stuffed message in memory
before DATA (smtplib ``data()`` makes three full copies of it: quoting, the
CRLF fix and the terminator), so DATA is streamed here in 256 KB slices cut
at line ends, dot-stuffed slice by slice. A 25 MB copy then costs one slice
of extra memory, not 75 MB.
"""

from __future__ import annotations

import functools
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar, cast

from mailbeacon.relay.accounts import Upstream

T = TypeVar("T")

CHUNK = 256 * 1024
TIMEOUT = 120.0  # per socket operation; RFC 5321 4.5.3.2 allows servers 10 min after DATA
_DOT = re.compile(rb"^\.", re.M)
# Whether a line starts with "." (after the first): a compiled regex finds
# this two-byte literal 2.5x faster than `b"\n." in`, 28 against 70 us per
# 82 KB copy (CPython 3.11: re skips to each LF, bytes' search does not).
LF_DOT = re.compile(rb"\n\.")
# A LF that no CR precedes. Written LF first: re then skips from LF to LF
# (37 us per 82 KB copy, against 97 for counting LFs and CRLFs, and 980
# for the same regex with the lookbehind first, which tries every byte).
_BARE_LF = re.compile(rb"\n(?<!\r\n)")


@dataclass(frozen=True)
class Reply:
    code: int  # 0: no reply (connection failed)
    text: str
    at: float | None = None  # when a copy was accepted

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code else self.text


class UpstreamError(Exception):
    """The session cannot go on (connect, TLS, login, or a dropped connection)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def _text(msg: bytes | str) -> str:
    raw = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    return " ".join(raw.split())[:500]


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str) -> ssl.SSLContext:
    """One verifying context per CA file: loading the system's CAs takes
    milliseconds, and a context serves any number of connections."""
    return ssl.create_default_context(cafile=cafile or None)


class Session:
    """One connection to an upstream: ``with Session(up, ...) as s: s.send(...)``."""

    def __init__(self, up: Upstream, *, helo: str | None = None, cafile: str | None = None) -> None:
        self.up = up
        self.helo = helo
        self.cafile = cafile or ""
        self.context = _tls_context(self.cafile)
        self.smtp: smtplib.SMTP | None = None
        self.reused = False  # taken idle from a Pool, and nothing sent on it since
        self.answered = False  # the upstream replied to something of the current copy

    @property
    def key(self) -> tuple[Upstream, str | None, str]:
        return (self.up, self.helo, self.cafile)

    def __enter__(self) -> Session:
        up = self.up
        where = f"upstream {up.host}:{up.port}"
        try:
            if up.tls == "implicit":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    up.host, up.port, local_hostname=self.helo, timeout=TIMEOUT,
                    context=self.context,
                )  # fmt: skip
            else:
                smtp = smtplib.SMTP(up.host, up.port, local_hostname=self.helo, timeout=TIMEOUT)
            self.smtp = smtp
            # Each write here is a whole command or a 256 KB slice: Nagle's
            # algorithm only held a slice's tail back until the server's
            # delayed ACK (40 ms per copy on Linux, bench/relay.py).
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if up.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise UpstreamError(
                        Reply(454, f"{where} does not offer STARTTLS (add ?tls=none to the "
                                   "upstream URL only for a server on a trusted network)")
                    )  # fmt: skip
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if up.user:
                smtp.login(up.user, up.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise UpstreamError(
                Reply(exc.smtp_code, f"{where} refused the login: {_text(exc.smtp_error)}")
            ) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise UpstreamError(Reply(exc.smtp_code, f"{where}: {_text(exc.smtp_error)}")) from None
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            self.close()
            raise UpstreamError(Reply(0, f"{where} unreachable: {exc}")) from None
        except UpstreamError:
            self.close()
            raise
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
        self.close()

    def close(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def options(self, wanted: Sequence[str]) -> list[str] | Reply:
        """MAIL FROM parameters: what the client asked for that the upstream offers.

        BODY=8BITMIME goes as is when offered, and without the parameter when
        not (what Postfix does too). SMTPUTF8 cannot be dropped: without it the
        upstream cannot take non-ASCII addresses, so the copy fails (RFC 6531 3.4).
        """
        assert self.smtp is not None
        out: list[str] = []
        for opt in wanted:
            name = opt.split("=", 1)[0].upper()
            if name == "BODY" and self.smtp.has_extn("8bitmime"):
                out.append(opt)
            elif name == "SMTPUTF8":
                if not self.smtp.has_extn("smtputf8"):
                    return Reply(553, "5.6.7 the upstream does not offer SMTPUTF8")
                out.append("SMTPUTF8")
        return out

    def send(
        self,
        mail_from: str,
        rcpt: str,
        data: bytes | Callable[[], bytes],
        wanted_options: Sequence[str] = (),
        size: int | None = None,
        early: bool = False,
    ) -> Reply:
        """One copy, one recipient. A refusal comes back as a Reply; a broken
        connection raises UpstreamError (the rest of the session is lost).

        ``data`` may be the function that makes the copy. With ``size`` (the
        SIZE to declare: an estimate, RFC 1870), or ``early`` (no SIZE: the
        copy's size is not known yet), and PIPELINING the envelope then goes
        first and the copy is made while the upstream answers it; if making
        it raises, the connection is closed (after DATA there is no other
        way to take the envelope back) and the error goes on."""
        smtp = self.smtp
        assert smtp is not None
        self.answered = False
        opts = self.options(wanted_options)
        if isinstance(opts, Reply):
            return opts
        first = size is not None or early  # the envelope before the copy
        if callable(data) and not (first and smtp.has_extn("pipelining")):
            data = data()
        if smtp.has_extn("size") and (size is not None or not callable(data)):
            opts.append(f"SIZE={size if callable(data) else len(data)}")
        try:
            if smtp.has_extn("pipelining"):
                return self._pipelined(mail_from, rcpt, data, opts)
            assert isinstance(data, bytes)
            code, msg = smtp.mail(mail_from, opts)
            self.answered = True
            if code != 250:
                smtp.rset()
                return Reply(code, _text(msg))
            code, msg = smtp.rcpt(rcpt)
            if code not in (250, 251):
                smtp.rset()
                return Reply(code, _text(msg))
            smtp.putcmd("data")
            return self._data(data)
        except smtplib.SMTPServerDisconnected as exc:
            raise UpstreamError(Reply(0, f"upstream closed the connection: {exc}")) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise UpstreamError(Reply(0, f"upstream connection failed: {exc}")) from None

    def _pipelined(
        self, mail_from: str, rcpt: str, data: bytes | Callable[[], bytes], opts: list[str]
    ) -> Reply:
        """MAIL, RCPT and DATA in one write, their replies read after (RFC 2920):
        one round trip to the upstream instead of three before the body.

        Not BDAT (CHUNKING), although it would save the 354's round trip:
        against Postfix each copy then waited ~25 ms for its last reply
        (bench/relay.py under py-spy: 68 ms a message against 38). Postfix
        answers MAIL and RCPT while the body still arrives; its final reply
        then waits, under Nagle, for our ACK of those, which Linux delays
        (up to 40 ms) because we have nothing more to send. With DATA our
        body carries that ACK."""
        smtp = self.smtp
        assert smtp is not None
        if "SMTPUTF8" in opts:
            smtp.command_encoding = "utf-8"  # what smtplib's mail() does for SMTPUTF8
        params = "".join(" " + o for o in opts)
        smtp.send(f"MAIL FROM:{_quote(mail_from)}{params}\r\nRCPT TO:{_quote(rcpt)}\r\nDATA\r\n")
        if callable(data):
            try:
                data = data()
            except BaseException:
                self.close()
                raise
        mail = smtp.getreply()
        self.answered = True
        to = smtp.getreply()
        if mail[0] != 250 or to[0] not in (250, 251):
            code, msg = mail if mail[0] != 250 else to
            if smtp.getreply()[0] == 354:  # a server that wants a body anyway: an empty one
                smtp.send(".\r\n")
                smtp.getreply()
            smtp.rset()
            return Reply(code, _text(msg))
        return self._data(data)

    def _data(self, data: bytes) -> Reply:
        """The reply to DATA (already sent), then the body."""
        smtp = self.smtp
        assert smtp is not None
        code, msg = smtp.getreply()
        if code != 354:
            smtp.rset()
            return Reply(code, _text(msg))
        view = memoryview(data)
        pos, n = 0, len(data)
        end = b".\r\n" if data.endswith(b"\n") or not data else b"\r\n.\r\n"
        while pos < n:
            cut = data.find(b"\n", min(pos + CHUNK, n) - 1)
            cut = n if cut < 0 else cut + 1
            out = bytes(view[pos:cut])
            # RFC 5321 4.5.2: a line starting with "." gets another; 2.3.8: CRLF
            # only. Both are rare: a search first, that jumps from LF to LF
            # (a regex that tried every byte was 2 ms per 3 copies of 82 KB,
            # bench/relay.py under py-spy; counting, 0.3 ms).
            if out.startswith(b".") or LF_DOT.search(out):
                out = _DOT.sub(b"..", out)
            if _BARE_LF.search(out):
                out = _BARE_LF.sub(b"\r\n", out)
            pos = cut
            smtp.send(out + end if pos >= n else out)  # the terminator rides with the tail
        if not n:
            smtp.send(end)
        code, msg = smtp.getreply()
        return Reply(code, _text(msg), time.time() if code == 250 else None)


@functools.lru_cache(maxsize=1024)
def _quote(addr: str) -> str:
    """``smtplib.quoteaddr``, kept: it runs the email package's address
    parser (~10 us), twice per copy, on the same few addresses every message."""
    return smtplib.quoteaddr(addr)


def _later(reply: Reply) -> Reply:
    """A session that cannot start or broke off is a temporary failure whatever
    its code (a refused login is fixed with `senders set`, then retried)."""
    return reply if 400 <= reply.code < 500 else Reply(451, f"4.4.1 {reply}")


class Pool:
    """Logged-in upstream sessions kept for the next message.

    A new session costs a connect, STARTTLS and AUTH (~15 ms to the test
    Postfix on the loaded test machine), and Postfix took the first message
    of a session ~3x longer than the next ones (57 vs 20 ms, median of 12):
    a sender who sends several messages in a row (a mail merge, a CRM) pays
    that once. A session idle for ``IDLE_SECONDS`` is closed (servers drop
    idle clients after minutes, RFC 5321 4.5.3.2.7: 5); one is checked with
    RSET before it is used again.
    """

    IDLE_SECONDS = 30.0
    PER_UPSTREAM = 4  # idle sessions kept per upstream and login

    def __init__(self) -> None:
        self._idle: dict[tuple[Upstream, str | None, str], list[tuple[float, Session]]] = {}
        self._lock = threading.Lock()

    def take(self, up: Upstream, helo: str, cafile: str) -> Session:
        """An idle session to ``up`` that still answers, or a new one (UpstreamError)."""
        key = (up, helo, cafile or "")
        while True:
            with self._lock:
                stack = self._idle.get(key) or []
                session = stack.pop()[1] if stack else None
            if session is None:
                return Session(up, helo=helo, cafile=cafile).__enter__()
            if session.smtp is not None:
                session.reused = True
                return session

    def give(self, session: Session) -> None:
        """Keep a session that is in a clean state for the next message."""
        if session.smtp is None:
            return
        with self._lock:
            stack = self._idle.setdefault(session.key, [])
            if len(stack) < self.PER_UPSTREAM:
                stack.append((time.monotonic(), session))
                return
        session.__exit__(None, None, None)

    def sweep(self, now: float | None = None) -> int:
        """Close the sessions idle for too long (no QUIT: nothing here may block)."""
        cutoff = (time.monotonic() if now is None else now) - self.IDLE_SECONDS
        old: list[Session] = []  # the key is kept while a session is idle
        with self._lock:
            for key, stack in list(self._idle.items()):
                old += [s for at, s in stack if at < cutoff]
                stack[:] = [(at, s) for at, s in stack if at >= cutoff]
                if not stack:
                    del self._idle[key]
        for session in old:
            session.close()
        return len(old)

    def close(self) -> None:
        """Drop every idle session (sockets closed, no QUIT: a node stopping must not wait)."""
        self.sweep(now=float("inf"))


def send_all(
    up: Upstream,
    helo: str,
    cafile: str,
    mail_from: str,
    options: Sequence[str],
    items: Sequence[tuple[str, Callable[[], bytes]]],
    stop_at_first_later: bool,
    deadline: float,
    pool: Pool | None = None,
    lanes: int = 1,
    executor: Executor | None = None,
    size: int | None = None,
    early: bool = False,
) -> list[Reply | None]:
    """Send each (recipient, make copy) over one connection (from ``pool``
    when given); one reply each, None for a copy not tried (the deadline
    passed, or the upstream said "later" before taking any copy and
    ``stop_at_first_later``).

    ``lanes`` > 1 (with an ``executor`` for the others): the copies are dealt
    round-robin to that many sessions sending at once, this thread driving
    the first. The upstream's time per copy is mostly its own queue-file
    fsync, so copies side by side overlap it (bench/relay.py). The other
    lanes are a bonus: one that cannot open its session (a provider's "421
    too many connections") leaves its copies to this thread's session,
    after its own.

    ``size`` (an estimate of a copy's size), or ``early`` (no SIZE declared):
    each envelope goes before its copy is made (Session.send), so a slow
    ``make`` overlaps the upstream's reading of the envelope; ``make`` may
    even wait for the client's message to arrive (Relay.begin)."""
    lanes = min(lanes, len(items)) if executor is not None else 1
    if lanes <= 1:
        got = _send_lane(
            up, helo, cafile, mail_from, options, items, stop_at_first_later, deadline, pool,
            size=size, early=early,
        )  # fmt: skip
        assert got is not None
        return got
    assert executor is not None
    try:  # this thread's session first: it is the one that must open
        first = pool.take(up, helo, cafile) if pool else Session(up, helo=helo, cafile=cafile)
        if pool is None:
            first.__enter__()
    except UpstreamError as exc:
        return [_later(exc.reply)] * len(items)
    groups = [list(range(len(items)))[k::lanes] for k in range(lanes)]
    args = (up, helo, cafile, mail_from, options)
    lane = functools.partial(_send_lane, *args, optional=True, size=size, early=early)
    others = [
        executor.submit(lane, [items[i] for i in g], stop_at_first_later, deadline, pool)
        for g in groups[1:]
    ]
    mine = _send_lane(
        *args, [items[i] for i in groups[0]], stop_at_first_later, deadline, pool,
        session=first, size=size, early=early,
    )  # fmt: skip
    assert mine is not None
    replies: list[Reply | None] = [None] * len(items)
    for i, reply in zip(groups[0], mine, strict=True):
        replies[i] = reply
    left: list[int] = []
    for group, future in zip(groups[1:], others, strict=True):
        sent = future.result()
        if sent is None:
            left += group
            continue
        for i, reply in zip(group, sent, strict=True):
            replies[i] = reply
    taken = any(r is not None and r.ok for r in replies)
    later = any(r is not None and not r.ok and not r.permanent for r in replies)
    if left and not (stop_at_first_later and later and not taken):
        late = _send_lane(
            *args, [items[i] for i in sorted(left)], stop_at_first_later, deadline, pool,
            size=size, early=early,
        )  # fmt: skip
        assert late is not None
        for i, reply in zip(sorted(left), late, strict=True):
            replies[i] = reply
    return replies


class Once(Generic[T]):
    """``fn()``, computed by the first caller (of any thread) and kept: the
    others wait for it. A submission's copy maker, read once for all lanes;
    a copy sent again on a new connection is not made again."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn: Callable[[], T] | None = fn
        self._lock = threading.Lock()
        self._value: T | None = None

    def __call__(self) -> T:
        with self._lock:
            if self._fn is not None:
                self._value = self._fn()
                self._fn = None
            return cast(T, self._value)


class Abandoned(Exception):
    """The client's message will not come to the copies waiting for it."""


class Awaited(Generic[T]):
    """A value one thread puts and others wait for, until a deadline: the
    copy maker of a submission whose envelopes went upstream at the client's
    DATA command, before its message arrived (Relay.begin).

    Either the value is put and every waiter gets it, or the waiting ends
    first (the deadline passed for a waiter, or ``abandon``) and no waiter
    ever gets it: ``put`` then says False, and as no copy has left, the
    caller sends them its own way."""

    def __init__(self, wait: float) -> None:
        self._deadline = time.monotonic() + wait
        self._cond = threading.Condition()
        self._value: T | None = None
        self._state = "waiting"  # "put" | "abandoned"

    def put(self, value: T) -> bool:
        with self._cond:
            if self._state != "waiting":
                return False
            self._value, self._state = value, "put"
            self._cond.notify_all()
            return True

    def abandon(self) -> None:
        """No value will come (a no-op once it came)."""
        with self._cond:
            if self._state == "waiting":
                self._state = "abandoned"
                self._cond.notify_all()

    def get(self) -> T:
        with self._cond:
            self._cond.wait_for(
                lambda: self._state != "waiting", max(0.0, self._deadline - time.monotonic())
            )
            if self._state == "put":
                return cast(T, self._value)
            self._state = "abandoned"
            self._cond.notify_all()
            raise Abandoned


def _send_lane(
    up: Upstream,
    helo: str,
    cafile: str,
    mail_from: str,
    options: Sequence[str],
    items: Sequence[tuple[str, Callable[[], bytes]]],
    stop_at_first_later: bool,
    deadline: float,
    pool: Pool | None,
    optional: bool = False,
    session: Session | None = None,
    size: int | None = None,
    early: bool = False,
) -> list[Reply | None] | None:
    """One session's share of send_all (on ``session`` when given, already
    open); None when ``optional`` and no session opened."""
    replies: list[Reply | None] = [None] * len(items)
    if session is None:
        try:
            session = pool.take(up, helo, cafile) if pool else Session(up, helo=helo, cafile=cafile)
            if pool is None:
                session.__enter__()
        except UpstreamError as exc:
            return None if optional else [_later(exc.reply)] * len(items)
    healthy = True
    try:
        taken = False
        for i, (rcpt, make) in enumerate(items):
            if time.monotonic() > deadline:
                break
            first = size is not None or early  # the envelope before the copy
            data: bytes | Callable[[], bytes] = Once(make) if first else make()
            try:
                try:
                    reply = session.send(mail_from, rcpt, data, options, size, early)
                except UpstreamError:
                    if not session.reused or session.answered:
                        raise
                    # An idle session the upstream had closed: it answered
                    # nothing of this copy, so it took nothing. Once more, on
                    # a new connection.
                    session.close()
                    session = Session(up, helo=helo, cafile=cafile).__enter__()
                    reply = session.send(mail_from, rcpt, data, options, size, early)
            except UpstreamError as exc:
                replies[i] = _later(exc.reply)
                healthy = False
                break
            del data
            session.reused = False
            replies[i] = reply
            taken = taken or reply.ok
            if stop_at_first_later and not taken and not reply.ok and not reply.permanent:
                break
    except BaseException:
        healthy = False
        raise
    finally:
        if pool is not None and healthy:
            pool.give(session)
        else:
            session.__exit__(None, None, None)
    return replies
