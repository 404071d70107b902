"""One copy per recipient: smtplib -> relay -> the private Postfix -> Dovecot.

What each recipient's mailbox holds is read back from Dovecot (over IMAP,
and from the maildir on disk), so the copies are checked as delivered by a
real MTA, with its TLS, AUTH and rewriting, not as a stub was handed them.
"""

from __future__ import annotations

import os
import re
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.helpers import rows
from tests.mailservers import Dovecot, Postfix, TLSFiles
from tests.relay_helpers import Relay, html_of, mail, start_relay

PIXEL = re.compile(r"/o/([A-Za-z0-9_-]+)\.gif")
CLICK = re.compile(r"/c/([A-Za-z0-9_-]+)")
# Added on the way in by Postfix (Received) and Dovecot's LMTP (the
# envelope): the only places a recipient's own address may appear.
TRACE = ("return-path", "delivered-to", "received")


def imap_raw(dovecot: Dovecot, addr: str) -> list[bytes]:
    """Every message in `addr`'s INBOX, fetched over IMAP (CRLF, as sent)."""
    dovecot.add_user(addr)
    with dovecot.imap(addr) as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[])")
    return [item[1] for item in data if isinstance(item, tuple)]


def test_two_to_one_cc_one_bcc_make_four_copies_in_four_mailboxes(
    postfix_relay: Relay, postfix: Postfix, dovecot: Dovecot
) -> None:
    ana = postfix_relay.login
    to = [dovecot.address("bob"), dovecot.address("cy")]
    cc = [dovecot.address("dee", "example.net")]
    bcc = [dovecot.address("eve", "example.com")]
    raw = mail(sender=ana, to=to, cc=cc, bcc=bcc)
    assert b"Bcc:" in raw  # what some clients really submit
    assert postfix_relay.send(raw, [*to, *cc, *bcc]) == {}

    delivered = postfix.wait_for([*to, *cc, *bcc])
    tokens = set()
    for addr, copies in delivered.items():
        (copy,) = copies  # exactly one each
        m = copy.message
        assert copy.header("Delivered-To") == addr  # envelope: this recipient only
        assert copy.header("Return-Path") == f"<{ana}>"
        assert m["To"] == ", ".join(to) and m["Cc"] == cc[0]
        assert m["From"] == f"Ana <{ana}>" and m["Subject"] == "Our proposal"
        assert m["Message-ID"] == "<proposal-1@example.com>"
        assert "Bcc" not in m and "X-Mailbeacon-Track" not in m
        for name, value in m.items():
            if name.lower() not in TRACE:
                assert bcc[0] not in str(value), f"{addr}'s copy names the Bcc in {name}"
        if addr != bcc[0]:
            assert bcc[0].encode() not in copy.raw  # anywhere, body included
        html = html_of(copy.raw)
        (token,) = set(PIXEL.findall(html))  # one pixel (background, CSS and VML)
        assert not CLICK.findall(html)  # default tracking: opens only
        tokens.add(token)
    assert len(tokens) == 4

    # Over IMAP, Bob's mailbox holds the same single message.
    (over_imap,) = imap_raw(dovecot, to[0])
    assert over_imap.replace(b"\r\n", b"\n") == delivered[to[0]][0].raw

    stored = rows(
        postfix_relay.server.db,
        "SELECT recipient, sent_at, message_id_header FROM messages ORDER BY recipient",
    )
    assert [r[0] for r in stored] == sorted([*to, *cc, *bcc])
    assert all(r[1] is not None and r[2] == "<proposal-1@example.com>" for r in stored)


def _attachment_part(raw: bytes) -> bytes:
    start = raw.index(b"Content-Type: application/octet-stream")
    return raw[start : raw.index(b"\r\n--", start)]


def test_attachment_arrives_byte_identical_over_implicit_tls(
    db_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, mail_tls: TLSFiles
) -> None:
    ana, _ = dovecot.add_user(dovecot.address("ana"))
    relay = start_relay(
        db_url, tmp_path, postfix.url("smtps", ana), login=ana, ca_file=mail_tls.ca_file
    )
    try:
        blob = os.urandom(300_000)
        rcpts = [dovecot.address("bob"), dovecot.address("cy")]
        raw = mail(sender=ana, to=rcpts, attachment=blob)
        assert relay.send(raw, rcpts) == {}
        postfix.wait_for(rcpts)
        for addr in rcpts:
            (got,) = imap_raw(dovecot, addr)
            assert _attachment_part(got) == _attachment_part(raw)  # the exact bytes
            (att,) = [p for p in message_from_bytes(got).walk() if p.get_filename()]
            assert att.get_payload(decode=True) == blob
            assert PIXEL.search(html_of(got))  # and the HTML part was tracked
    finally:
        relay.server.stop()


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_upstream_certificate_is_verified(
    sqlite_url: str, tmp_path: Path, postfix: Postfix, dovecot: Dovecot, tls: str
) -> None:
    """Without the test CA the relay cannot verify Postfix: the client hears
    4xx (it sends again later) and nothing is delivered."""
    ana, _ = dovecot.add_user(dovecot.address("ana"))
    relay = start_relay(sqlite_url, tmp_path, postfix.url(tls, ana), login=ana)  # type: ignore[arg-type]
    try:
        bob = dovecot.address("bob")
        with relay.client() as smtp:
            code, msg = smtp.mail(ana)
            assert code == 250
            smtp.rcpt(bob)
            code, msg = smtp.data(mail(sender=ana, to=[bob]))
        assert 400 <= code < 500 and b"certificate verify failed" in msg, msg
        assert postfix.received(bob) == []
    finally:
        relay.server.stop()
