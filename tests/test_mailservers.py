"""The private mail servers the relay and reply tests stand on (tests/mailservers/).

LMTP -> private Dovecot -> imaplib, plain and over TLS; Dovecot restarted
under a client; flags read without changing them; a big mailbox filled fast.
"""

from __future__ import annotations

import email.policy
import imaplib
from email.message import EmailMessage

import pytest

from tests.mailservers import Dovecot

pytestmark = pytest.mark.mailservers


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
