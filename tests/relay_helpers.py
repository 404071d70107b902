"""Helpers for the relay tests: a relay server process with a sender, an
smtplib client, the upstreams it sends to, and the messages it is given.

The issue's scenarios run against the private Postfix -> Dovecot of
tests/mailservers/ (`postfix_relay`). The aiosmtpd stub stays where a
scripted upstream is the point (an answer Postfix cannot be made to give on
cue, or the MAIL FROM parameters it was handed), and `CutProxy` breaks a
session with the real Postfix in the middle.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import Server, cli, free_port, start_server
from tests.mailservers import Dovecot, Postfix, TLSFiles


@dataclass
class Delivery:
    mail_from: str
    rcpts: list[str]
    data: bytes
    options: list[str]

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)

    def html(self) -> str:
        return html_of(self.data)


def html_of(raw: bytes) -> str:
    """A message's decoded HTML part ('' when there is none)."""
    for part in message_from_bytes(raw).walk():
        if part.get_content_type() == "text/html":
            body = part.get_payload(decode=True)
            assert isinstance(body, bytes)
            return body.decode(part.get_content_charset() or "utf-8")
    return ""


class Stub:
    """An upstream SMTP server that records what it is given.

    ``answer(rcpt) -> reply or None`` decides per recipient (None: accept);
    ``data_answer()`` may refuse the DATA (e.g. "451" while "down")."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.sessions = 0  # EHLOs seen: one per connection without STARTTLS
        self.rcpt_answer: Callable[[str], str | None] = lambda _r: None
        self.data_answer: Callable[[], str | None] = lambda: None
        self.pipelining = False  # offer PIPELINING (aiosmtpd reads pipelined commands anyway)
        # Hold each DATA reply until this many sessions are open (10 s at most):
        # copies then overlap for sure, however the threads are scheduled.
        self.hold_until_sessions = 0

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that has the hook
        self.sessions += 1
        return (
            responses[:-1] + ["250-PIPELINING"] + responses[-1:] if self.pipelining else responses
        )

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.rcpt_answer(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        deadline = time.monotonic() + 10
        while self.sessions < self.hold_until_sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        refusal = self.data_answer()
        if refusal:
            return refusal
        self.deliveries.append(
            Delivery(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content),
                list(envelope.mail_options),
            )
        )
        return "250 2.0.0 queued as stub"

    def wait(self, n: int, timeout: float = 30) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.deliveries) >= n, f"{len(self.deliveries)} of {n} deliveries arrived"
        return self.deliveries


def start_stub(port: int | None = None) -> tuple[Stub, Controller]:
    stub = Stub()
    ctl = Controller(
        stub, hostname="127.0.0.1", port=port or free_port(), enable_SMTPUTF8=True,
        data_size_limit=64 * 1024 * 1024,
    )  # fmt: skip
    ctl.start()
    return stub, ctl


@dataclass
class Relay:
    server: Server
    smtp_port: int
    login: str
    password: str
    upstream: str
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, login: bool = True) -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=60)
        smtp.ehlo("client.test")
        if login:
            smtp.login(self.login, self.password)
        return smtp

    def send(self, raw: bytes, rcpts: Sequence[str], mail_from: str | None = None) -> Any:
        with self.client() as smtp:
            return smtp.sendmail(mail_from or self.login, list(rcpts), raw)


def make_sender(db: str, login: str, upstream: str, *args: str) -> str:
    out = cli("senders", "create", "--email", login, "--upstream", upstream, *args, db=db)
    return out.stdout.strip().splitlines()[-1].split()[-1]


def start_relay(
    db: str,
    workdir: Path,
    upstream: int | str,
    *,
    login: str = "ana@example.com",
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ca_file: Path | None = None,
) -> Relay:
    """A serve process with --smtp-port and one sender whose upstream is
    `upstream` (a URL, or the port of a plain server on loopback); `ca_file`:
    the CA the relay trusts for the upstream's certificate."""
    url = upstream if isinstance(upstream, str) else f"smtp://127.0.0.1:{upstream}?tls=none"
    password = make_sender(db, login, url)
    smtp_port = free_port()
    ca = {"MAILBEACON_RELAY_UPSTREAM_CA": str(ca_file)} if ca_file else {}
    srv = start_server(
        db, workdir, extra_args=["--smtp-port", str(smtp_port), *extra_args],
        env={"MAILBEACON_RELAY_RETRY_BASE": "0.3", **ca, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while f":{smtp_port}" not in srv.output():
        assert time.monotonic() < deadline, srv.output()
        time.sleep(0.05)
    return Relay(srv, smtp_port, login, password, url)


def relaunch(relay: Relay) -> None:
    """SIGKILL the serve process and start it again on the same ports."""
    relay.server.restart()
    deadline = time.monotonic() + 30
    while relay.server.output().count(f":{relay.smtp_port}") < 1:
        assert time.monotonic() < deadline, relay.server.output()
        time.sleep(0.05)


def mail(
    *,
    sender: str = "ana@example.com",
    to: Sequence[str] = ("bob@example.org",),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    subject: str = "Our proposal",
    html: str | None = '<p>Hello, see <a href="https://example.com/offer">the offer</a>.</p>',
    text: str = "Hello, see https://example.com/offer",
    extra_headers: Sequence[str] = (),
    attachment: bytes | None = None,
) -> bytes:
    """A message as a mail client would submit it (CRLF, multipart/alternative)."""
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    from email.policy import SMTP

    alt = MIMEMultipart("alternative")
    alt.attach(MIMEText(text, "plain", "utf-8"))
    if html is not None:
        alt.attach(MIMEText(html, "html", "utf-8"))
    msg: Any = alt
    if attachment is not None:
        msg = MIMEMultipart("mixed")
        msg.attach(alt)
        part = MIMEApplication(attachment, "octet-stream")
        part.add_header("Content-Disposition", "attachment", filename="data.bin")
        msg.attach(part)
    msg["From"] = f"Ana <{sender}>"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if bcc:
        msg["Bcc"] = ", ".join(bcc)
    msg["Subject"] = subject
    msg["Message-ID"] = "<proposal-1@example.com>"
    for h in extra_headers:
        name, value = h.split(":", 1)
        msg[name] = value.strip()
    return bytes(msg.as_bytes(policy=SMTP))


# Fixtures shared by the relay tests (a module uses them by importing them).


@pytest.fixture
def stub() -> Iterator[tuple[Stub, Controller]]:
    """An upstream stub on a free port."""
    box, ctl = start_stub()
    try:
        yield box, ctl
    finally:
        if ctl._thread is not None:  # a test may have stopped it (upstream "down")
            ctl.stop()


@pytest.fixture
def relay(db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]) -> Iterator[Relay]:
    """A serve process with --smtp-port and a sender whose upstream is the stub."""
    r = start_relay(db_url, tmp_path, stub[1].port)
    try:
        yield r
    finally:
        r.server.stop()


@pytest.fixture
def postfix_relay(
    db_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, mail_tls: TLSFiles
) -> Iterator[Relay]:
    """A serve process whose sender (a fresh Dovecot user, so reports to it
    land in a mailbox) sends through the private Postfix: STARTTLS verified
    against the test CA, AUTH as that user. Postfix delivers every copy into
    Dovecot."""
    login, _ = dovecot.add_user(dovecot.address("ana"))
    r = start_relay(
        db_url, tmp_path, postfix.url("starttls", login), login=login, ca_file=mail_tls.ca_file
    )
    try:
        yield r
    finally:
        r.server.stop()


class CutProxy:
    """A TCP forwarder to a plain upstream that breaks the first session in
    the middle: when the client starts its second mail transaction there,
    both connections close, and from then on the upstream hangs (connections
    are accepted and never answered, `held` is set) until `restore()`.

    Postfix cannot be told to fail between two messages of one session; this
    puts that failure in front of the real one."""

    _MAIL = re.compile(rb"(?:^|\r\n)mail from:", re.I)

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.down = False
        self.refusing = False  # new connections are closed at once (subclasses set it)
        self.cut = threading.Event()
        self.held = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def restore(self) -> None:
        self.down = False
        for s in self._held:
            s.close()

    def close(self) -> None:
        self.restore()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            # Read before the checks below: a cut that lands between them
            # then finds this connection counting (and cut) or refused,
            # never forwarding unwatched (a relay reconnecting at once after
            # the cut got a second copy through that way).
            cuts = not self.cut.is_set()
            if self.refusing:
                client.close()
                continue
            if self.down:
                self._held.append(client)
                self.held.set()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=30)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, cuts), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, cuts: bool) -> None:
        transactions, tail = 0, b""
        try:
            while chunk := src.recv(65536):
                if cuts:
                    seen = tail + chunk  # a command may straddle two reads
                    transactions += sum(m.end() > len(tail) for m in self._MAIL.finditer(seen))
                    tail = seen[-16:]
                    if transactions >= 2:
                        self.down = True
                        self.cut.set()
                        break
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
