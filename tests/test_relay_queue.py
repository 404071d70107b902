"""Nothing lost: 4xx back to the client, the durable queue, bounce reports, several nodes.

Against the private Postfix -> Dovecot (reports are read from the sender's
own mailbox); the several-nodes test keeps the stub, which can say "not yet"
to every copy and then open on cue.
"""

from __future__ import annotations

import re
import smtplib
import socket
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import rows, start_server, wait_for, wait_rounds
from tests.mailservers import BOUNCE, DEFER, REJECT, Dovecot, Postfix, TLSFiles
from tests.relay_helpers import CutProxy, Relay, Stub, html_of, mail, relaunch, start_relay

PIXEL = re.compile(r"/o/([A-Za-z0-9_-]+)\.gif")


def _report(raw: bytes) -> tuple[Message, list[Message]]:
    """A delivery report's message/delivery-status blocks (per message, per recipient)."""
    m = message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    status = next(p for p in m.walk() if p.get_content_type() == "message/delivery-status")
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    return m, blocks


def test_upstream_down_at_submit_is_4xx_and_leaves_nothing(
    postfix_relay: Relay, postfix: Postfix, dovecot: Dovecot
) -> None:
    ana, db = postfix_relay.login, postfix_relay.server.db
    rcpts = [dovecot.address("bob"), dovecot.address("cy")]
    raw = mail(sender=ana, to=rcpts)
    postfix.stop()  # the sender's server is down
    with pytest.raises(smtplib.SMTPDataError) as exc:
        postfix_relay.send(raw, rcpts)
    assert 400 <= exc.value.smtp_code < 500, exc.value
    assert rows(db, "SELECT count(*) FROM messages") == [(0,)]
    assert rows(db, "SELECT count(*) FROM relay_copies") == [(0,)]
    postfix.start()
    assert postfix_relay.send(raw, rcpts) == {}  # the client's retry goes through
    assert all(len(m) == 1 for m in postfix.wait_for(rcpts).values())


class OneCopyProxy(CutProxy):
    """CutProxy for copies sent side by side (relay/upstream.py send_all's
    lanes): the upstream takes the first mail transaction, on whichever
    connection; the next one, on any connection, closes that connection.
    From then on new connections are closed at once until `hang()`, and
    accepted and never answered (`held`) until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self.mails = 0
        self.lock = threading.Lock()
        super().__init__(target_port)

    def hang(self) -> None:
        self.down, self.refusing = True, False

    def _pump(self, src: socket.socket, dst: socket.socket, cuts: bool) -> None:
        tail = b""
        try:
            while chunk := src.recv(65536):
                if cuts:
                    seen = tail + chunk  # a command may straddle two reads
                    n = sum(m.end() > len(tail) for m in self._MAIL.finditer(seen))
                    tail = seen[-16:]
                    with self.lock:
                        self.mails += n
                        if n and self.mails >= 2:
                            if not self.cut.is_set():
                                self.refusing = True
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


def test_failure_after_acceptance_is_queued_and_survives_sigkill(
    db_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot
) -> None:
    """Postfix takes one copy, then the upstream breaks (the other copies'
    connections close) and hangs: the rest is queued, serve is SIGKILLed in
    the middle of a retry, and the copies are delivered, once, after the
    upstream is back."""
    ana, _ = dovecot.add_user(dovecot.address("ana"))
    proxy = OneCopyProxy(postfix.port("none", auth=True))
    url = postfix.url("none", ana).replace(f":{postfix.port('none', True)}", f":{proxy.port}")
    relay = start_relay(db_url, tmp_path, url, login=ana, env={"MAILBEACON_RELAY_LEASE": "3"})
    try:
        rcpts = [dovecot.address("bob"), dovecot.address("cy"), dovecot.address("dee")]
        with relay.client() as smtp:
            smtp.mail(ana)
            for r in rcpts:
                smtp.rcpt(r)
            code, msg = smtp.data(mail(sender=ana, to=rcpts))
        assert (code, msg) == (250, b"2.0.0 1 sent, 2 queued, 0 refused")
        assert proxy.cut.is_set()
        proxy.hang()
        db = relay.server.db
        state = "SELECT recipient, status, locked_until IS NOT NULL FROM relay_copies ORDER BY id"
        ((first,),) = rows(db, "SELECT recipient FROM relay_copies WHERE status = 'sent'")
        rest = [r for r in rcpts if r != first]
        assert len(postfix.wait_for(first)[first]) == 1
        assert proxy.held.wait(30), "the queue did not retry"
        wait_for(lambda: sorted(rows(db, state)) == sorted(
            [(first, "sent", False)] + [(r, "pending", True) for r in rest]
        ), "the retry's claim")  # fmt: skip
        relay.server.kill()  # SIGKILL mid-send: nothing is flushed on the way out
        proxy.restore()  # the upstream is back
        relaunch(relay)
        got = postfix.wait_for(rest)  # the dead node's lease ran out, then sent
        wait_for(lambda: rows(db, "SELECT count(*) FROM messages WHERE sent_at IS NULL")
              == [(0,)], "sent_at on every copy")  # fmt: skip
        assert rows(db, state) == [(r, "sent", False) for r in rcpts]
        (sub,) = rows(db, "SELECT data FROM relay_submissions")
        assert sub[0] is None  # dropped once every copy left
        postfix.wait_queue_empty()
        got[first] = postfix.received(first)
        assert {r: len(m) for r, m in got.items()} == dict.fromkeys(rcpts, 1)  # none twice
        assert len({tuple(PIXEL.findall(html_of(m[0].raw))) for m in got.values()}) == 3
    finally:
        relay.server.stop()
        proxy.close()


def test_permanent_refusal_sends_a_report_to_the_sender(
    postfix_relay: Relay, postfix: Postfix, dovecot: Dovecot
) -> None:
    ana, db = postfix_relay.login, postfix_relay.server.db
    bob, gone = dovecot.address("bob"), dovecot.address(REJECT)
    assert postfix_relay.send(mail(sender=ana, to=[bob, gone], subject="Quote"), [bob, gone]) == {}
    (report,) = postfix.wait_for(ana)[ana]  # in the sender's own mailbox
    m, (per_message, block) = _report(report.raw)
    assert m["Subject"] == "Undelivered Mail Returned to Sender: Quote"
    assert m["To"] == ana and m["Auto-Submitted"] == "auto-replied"
    assert block["Final-Recipient"] == f"rfc822; {gone}"
    assert (block["Action"], block["Status"]) == ("failed", "5.1.1")
    assert "550 5.1.1" in block["Diagnostic-Code"] and "test upstream" in block["Diagnostic-Code"]
    headers = next(p for p in m.walk() if p.get_content_type() == "text/rfc822-headers")
    assert b"Message-ID: <proposal-1@example.com>" in headers.get_payload(decode=True)
    assert len(postfix.received(bob)) == 1 and postfix.received(gone) == []
    assert rows(db, "SELECT recipient, status, last_code FROM relay_copies "
                "WHERE message_id IS NOT NULL ORDER BY recipient") == [
        (bob, "sent", 250), (gone, "failed", 550)
    ]  # fmt: skip


def test_a_copy_bounced_after_acceptance_reaches_the_sender_from_postfix(
    postfix_relay: Relay, postfix: Postfix, dovecot: Dovecot
) -> None:
    """Postfix took the copy (250: sent) and bounced it later: its own DSN
    goes to the envelope sender, the sender's mailbox, not to the relay."""
    ana = postfix_relay.login
    later = dovecot.address(BOUNCE)
    assert postfix_relay.send(mail(sender=ana, to=[later]), [later]) == {}
    (report,) = postfix.wait_for(ana)[ana]
    m, (_, block) = _report(report.raw)
    assert block["Final-Recipient"] == f"rfc822; {later}" and block["Status"] == "5.1.1"
    assert "upstream.mailbeacon.test" in m["From"]  # Postfix's MAILER-DAEMON, not ours


def test_retries_give_up_after_max_age_with_a_report(
    sqlite_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, mail_tls: TLSFiles
) -> None:
    ana, _ = dovecot.add_user(dovecot.address("ana"))
    relay = start_relay(
        sqlite_url, tmp_path, postfix.url("starttls", ana), login=ana, ca_file=mail_tls.ca_file,
        env={"MAILBEACON_RELAY_MAX_AGE": "2"},
    )  # fmt: skip
    try:
        bob, slow = dovecot.address("bob"), dovecot.address(DEFER)  # 450 at every RCPT
        assert relay.send(mail(sender=ana, to=[bob, slow]), [bob, slow]) == {}
        (report,) = postfix.wait_for(ana)[ana]
        _, (_, block) = _report(report.raw)
        assert (block["Status"], block["Action"]) == ("4.4.7", "failed")
        assert block["Final-Recipient"] == f"rfc822; {slow}"
        (tries,) = rows(sqlite_url, "SELECT attempts FROM relay_copies WHERE recipient = ?",
                        (slow,))  # fmt: skip
        assert tries[0] >= 2  # retried with backoff before giving up
    finally:
        relay.server.stop()


def test_two_nodes_share_the_queue_without_sending_a_copy_twice(
    db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several nodes share one store only on PostgreSQL")
    box = stub[0]
    is_open = [False]
    box.rcpt_answer = lambda r: (
        None if is_open[0] or r.endswith("-0@example.org") else "451 4.3.0 not yet"
    )
    relay = start_relay(db_url, tmp_path, stub[1].port)
    second = None
    try:
        for i in range(8):
            rcpts = [f"r{i}-{k}@example.org" for k in range(6)]
            assert relay.send(mail(to=rcpts), rcpts) == {}
        assert rows(db_url, "SELECT count(*) FROM relay_copies WHERE status = 'pending'") == [(40,)]
        second = start_server(db_url, tmp_path, env={"MAILBEACON_RELAY_RETRY_BASE": "0.3"})
        is_open[0] = True
        box.wait(48)
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM relay_copies WHERE status = 'pending'")
              == [(0,)], "an empty queue")  # fmt: skip
        # A pass sends all it claimed before it ends: two more passes on each
        # node and no copy can still be on its way.
        for node in (relay.server, second):
            wait_rounds(node.url, "relay_queue", 2)
        sent = [d.rcpts[0] for d in box.deliveries]
        assert len(sent) == len(set(sent)) == 48
    finally:
        relay.server.stop()
        if second is not None:
            second.stop()
