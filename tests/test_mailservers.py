"""The private mail servers the relay and reply tests stand on (tests/mailservers/).

smtplib -> private Postfix (each TLS/AUTH listener) -> LMTP -> private
Dovecot -> imaplib; refusals with their codes; Postfix down and up again;
Dovecot restarted under a client; flags read without changing them; Debian's
SpamAssassin rules.
"""

from __future__ import annotations

import email.policy
import imaplib
import smtplib
import socket
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from tests.mailservers import HOST, Dovecot, Postfix


def message(sender: str, to: list[str], subject: str, body: str = "Hello.\n") -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@mailbeacon.test>"
    msg["Date"] = "Tue, 03 Dec 2024 10:00:00 +0000"
    msg.set_content(body)
    return msg.as_bytes()


def imap_subjects(dovecot: Dovecot, user: str, tls: str = "none") -> list[str]:
    with dovecot.imap(user, tls=tls) as imap:  # type: ignore[arg-type]
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return [item[1].decode().split(":", 1)[1].strip() for item in data if isinstance(item, tuple)]


@pytest.mark.parametrize("tls", ["none", "starttls", "smtps"])
@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
def test_smtp_through_postfix_and_lmtp_reaches_imap(
    postfix: Postfix, dovecot: Dovecot, tls: str, auth: bool
) -> None:
    sender = dovecot.add_user(dovecot.address("sender"))
    rcpt = dovecot.add_user(dovecot.address("ana"))[0]
    subject = f"listener {tls} {'auth' if auth else 'open'} {rcpt}"
    with postfix.client(tls, login=sender if auth else None) as smtp:  # type: ignore[arg-type]
        assert smtp.sendmail(sender[0], [rcpt], message(sender[0], [rcpt], subject)) == {}

    (stored,) = postfix.wait_for(rcpt)[rcpt]
    assert stored.header("Subject") == subject
    assert stored.header("Delivered-To") == rcpt  # Dovecot's LMTP records the envelope
    assert imap_subjects(dovecot, rcpt) == [subject]


def test_upstream_urls_name_the_listeners(postfix: Postfix, dovecot: Dovecot) -> None:
    user, password = dovecot.add_user(dovecot.address("url"), "p@ss word")
    quoted = user.replace("@", "%40")
    assert postfix.url("none") == f"smtp://{HOST}:{postfix.port('none')}?tls=none"
    assert postfix.url("starttls", user) == (
        f"smtp://{quoted}:p%40ss%20word@{HOST}:{postfix.port('starttls', auth=True)}"
    )
    assert postfix.url("smtps", user).startswith(f"smtps://{quoted}:")
    assert dovecot.imap_url(user, "imaps") == (
        f"imaps://{quoted}:p%40ss%20word@{HOST}:{dovecot.imaps_port}"
    )
    assert dovecot.imap_url(user).endswith(f":{dovecot.imap_port}?tls=none")
    assert len({*postfix.ports.values(), dovecot.imap_port, dovecot.imaps_port}) == 8


def test_auth_listeners_refuse_strangers(postfix: Postfix, dovecot: Dovecot) -> None:
    user, _ = dovecot.add_user(dovecot.address("auth"))
    with postfix.client("none") as smtp:  # the open listener offers no AUTH
        smtp.ehlo()
        assert not smtp.has_extn("auth")
    with smtplib.SMTP(HOST, postfix.port("starttls", auth=True), timeout=30) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # offered only after STARTTLS
        smtp.starttls(context=postfix.tls.client_context())
        smtp.ehlo()
        assert smtp.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            smtp.login(user, "wrong password")
        assert wrong.value.smtp_code == 535
        smtp.mail(user)
        code, _ = smtp.rcpt(dovecot.address("anyone"))
        assert code == 554  # unauthenticated: no relaying through this listener


def test_reject_and_defer_recipients_fail_at_rcpt(postfix: Postfix, dovecot: Dovecot) -> None:
    ok, rejected, deferred = (dovecot.address(n) for n in ("ok", "reject", "defer"))
    raw = message("s@example.com", [ok, rejected, deferred], f"refusals {ok}")
    with postfix.client() as smtp:
        refused = smtp.sendmail("s@example.com", [ok, rejected, deferred], raw)
    assert refused[rejected][0] == 550
    assert refused[deferred][0] == 450
    assert ok not in refused
    assert len(postfix.wait_for(ok)[ok]) == 1


def test_bounce_recipient_gets_the_sender_a_dsn(postfix: Postfix, dovecot: Dovecot) -> None:
    sender, bounced = dovecot.address("sender"), dovecot.address("bounce")
    with postfix.client() as smtp:
        assert smtp.sendmail(sender, [bounced], message(sender, [bounced], f"to {bounced}")) == {}
    (dsn,) = postfix.wait_for(sender)[sender]
    assert dsn.message.get_content_type() == "multipart/report"
    assert dsn.message.get_param("report-type") == "delivery-status"
    assert bounced in dsn.raw.decode(errors="replace")
    assert postfix.received(bounced) == []


def test_postfix_stopped_refuses_connections_and_starts_again(
    postfix: Postfix, dovecot: Dovecot
) -> None:
    ports = dict(postfix.ports)
    postfix.stop()
    assert not postfix.running
    for port in ports.values():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=5).close()

    postfix.start()
    assert postfix.ports == ports
    rcpt = dovecot.address("again")
    with postfix.client("starttls") as smtp:
        smtp.sendmail("s@example.com", [rcpt], message("s@example.com", [rcpt], f"back {rcpt}"))
    assert len(postfix.wait_for(rcpt)[rcpt]) == 1


def test_dovecot_restart_drops_clients_and_keeps_mail(dovecot: Dovecot) -> None:
    user, _ = dovecot.add_user(dovecot.address("restart"))
    dovecot.deliver(message("s@example.com", [user], f"kept {user}"), user)
    imap = dovecot.imap(user)
    imap.select("INBOX", readonly=True)
    port = dovecot.imap_port

    dovecot.restart()

    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imap.noop()
    assert dovecot.imap_port == port
    assert imap_subjects(dovecot, user) == [f"kept {user}"]


def test_mail_accepted_while_dovecot_is_down_arrives_after_it_returns(
    postfix: Postfix, dovecot: Dovecot
) -> None:
    rcpt = dovecot.address("queued")
    dovecot.stop()
    with postfix.client() as smtp:
        smtp.sendmail("s@example.com", [rcpt], message("s@example.com", [rcpt], f"q {rcpt}"))
    dovecot.start()
    (stored,) = postfix.wait_for(rcpt)[rcpt]  # retried within seconds, not 5 minutes
    assert stored.header("Subject") == f"q {rcpt}"
    postfix.wait_queue_empty()


@pytest.mark.parametrize("tls", ["starttls", "imaps"])
def test_imap_over_tls_verifies_against_the_test_ca(dovecot: Dovecot, tls: str) -> None:
    user, _ = dovecot.add_user(dovecot.address("tls"))
    dovecot.deliver(message("s@example.com", [user], f"tls {user}"), user)
    assert imap_subjects(dovecot, user, tls) == [f"tls {user}"]


def test_flags_are_listed_and_a_read_only_look_changes_none(dovecot: Dovecot) -> None:
    user, _ = dovecot.add_user(dovecot.address("flags"))
    for n in range(3):
        dovecot.deliver(message("s@example.com", [user], f"flags {n} {user}"), user)
    with dovecot.imap(user) as imap:
        imap.select("INBOX")
        imap.store("1", "+FLAGS", r"(\Seen \Flagged)")
        imap.store("2", "+FLAGS", "($Forwarded)")
    before = dovecot.flags(user)
    assert sorted(before.values(), key=len) == [
        frozenset(),
        frozenset({"$Forwarded"}),
        frozenset({"\\Seen", "\\Flagged"}),
    ]

    with dovecot.imap(user) as imap:  # what a read-only watcher does
        imap.select("INBOX", readonly=True)
        imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO)])")
        _, data = imap.fetch("1:*", "(FLAGS)")
    assert dovecot.flags(user) == before
    assert isinstance(data[0], bytes)
    assert set(imaplib.ParseFlags(data[0])) == {b"\\Seen", b"\\Flagged"}  # disk == IMAP


def test_store_fills_a_big_mailbox_without_lmtp(dovecot: Dovecot) -> None:
    user, _ = dovecot.add_user(dovecot.address("bulk"))
    raws = (message("s@example.com", [user], f"bulk {n}") for n in range(200))
    assert dovecot.store(user, raws, flags=["\\Seen"]) == 200
    with dovecot.imap(user) as imap:
        _, status = imap.status("INBOX", "(MESSAGES UNSEEN)")
    assert status == [b"INBOX (MESSAGES 200 UNSEEN 0)"]


SPAM = b"""\
From: WINNER <winner@lottery.example>
To: you@example.net
Subject: CONGRATULATIONS!!! YOU HAVE WON $1,000,000 CASH PRIZE!!!
MIME-Version: 1.0
Content-Type: text/html

<html><body><font size=7 color=red>CLICK HERE NOW!!! 100% FREE!!!</font>
<p>Dear Friend, you have been selected as the winner of our international
lottery. Send your bank account details to claim your prize of ONE MILLION
DOLLARS. Act now! Guaranteed! No credit check!</p>
<a href="http://192.0.2.1/claim">http://www.paypal.com/verify</a>
</body></html>
"""


def test_spamassassin_flags_spam_and_passes_plain_mail(
    spam_rules: Callable[[bytes], tuple[float, set[str]]],
) -> None:
    score, rules = spam_rules(SPAM)
    assert score >= 5.0
    assert {"DEAR_FRIEND", "MISSING_DATE", "MIME_HTML_ONLY"} <= rules

    plain = message("Ana <ana@example.org>", ["bob@example.net"], "Notes from Tuesday")
    score, rules = spam_rules(plain)
    assert score < 1.0
    assert len(rules) <= 3, rules
    assert spam_rules(plain) == (score, rules)  # the same verdict every time
