"""The copies' envelopes go upstream at the client's DATA command, before its
message arrives (Relay.begin): what the upstream sees then, and that a
message that never comes, or comes and is refused, leaves nothing upstream
and no message behind.

The stub is the upstream: it shows when each RCPT arrived."""

from __future__ import annotations

import os
import re
import smtplib
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiosmtpd.controller import Controller

from mailbeacon.store.messages import ID_GAP
from tests.helpers import rows, wait_for
from tests.relay_helpers import Relay, Stub, mail, relaunch

ZOE, YAN = "zoe@example.org", "yan@example.org"


def at_data(relay: Relay, rcpts: list[str], size: int) -> smtplib.SMTP:
    """A logged-in client that said MAIL (with SIZE), RCPT and DATA, and got the 354."""
    smtp = relay.client()
    assert smtp.mail(relay.login, [f"SIZE={size}"])[0] == 250
    for r in rcpts:
        assert smtp.rcpt(r)[0] == 250
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354
    return smtp


def body(raw: bytes) -> bytes:
    """The message as it goes after the 354: dot-stuffed, then the lone dot."""
    return re.sub(rb"(?m)^\.", b"..", raw) + b".\r\n"


def envelopes(box: Stub) -> list[str]:
    """Record each RCPT the upstream is given, as it comes."""
    seen: list[str] = []
    box.rcpt_answer = lambda r: seen.append(r)
    return seen


def test_the_envelopes_wait_upstream_for_the_message(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    box, _ = stub
    box.pipelining = True
    seen = envelopes(box)
    raw = mail(to=[ZOE, YAN])
    smtp = at_data(relay, [ZOE, YAN], len(raw))
    # Nothing of the message has been sent, and the upstream has both envelopes.
    wait_for(lambda: sorted(seen) == sorted([YAN, ZOE]), "the envelopes upstream")
    smtp.send(body(raw))
    code, msg = smtp.getreply()
    assert code == 250 and b"2 sent" in msg
    smtp.quit()
    copies = box.wait(2)
    assert sorted(c.rcpts[0] for c in copies) == sorted([YAN, ZOE])
    for c in copies:  # no SIZE: the copy did not exist when its envelope left
        assert not any(o.upper().startswith("SIZE=") for o in c.options)
        assert c.message["Subject"] == "Our proposal" and "/o/" in c.html()
    stored = rows(relay.server.db, "SELECT subject, sent_at FROM messages")
    assert len(stored) == 2 and all(s == "Our proposal" and t is not None for s, t in stored)


def _goes_away(smtp: smtplib.SMTP, raw: bytes) -> None:
    smtp.send(body(raw)[: len(raw) // 2])  # half the message, then the connection closes
    smtp.close()


def _spoofs_from(smtp: smtplib.SMTP, raw: bytes) -> None:
    smtp.send(body(raw.replace(b"From: Ana <ana@example.com>", b"From: <ceo@example.com>")))
    code, msg = smtp.getreply()
    assert code == 550 and b"ceo@example.com" in msg
    smtp.quit()


def _line_too_long(smtp: smtplib.SMTP, raw: bytes) -> None:
    smtp.send(body(raw.replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 2000 + b"\r\n", 1)))
    code, _msg = smtp.getreply()
    assert code == 500
    smtp.quit()


@pytest.mark.parametrize("how", [_goes_away, _spoofs_from, _line_too_long])
def test_a_message_that_does_not_come_leaves_nothing(
    relay: Relay, stub: tuple[Stub, Controller], how: object
) -> None:
    """Three times in a row (more than the relay begins early at once), then
    a message that comes: only that one reaches the upstream, and it too had
    its envelope there before its message (no early slot was kept)."""
    box, _ = stub
    box.pipelining = True
    seen = envelopes(box)
    gone = [f"gone{i}@example.org" for i in range(3)]
    raw = mail(to=gone)
    assert callable(how)
    for i, rcpt in enumerate(gone):
        smtp = at_data(relay, [rcpt], len(raw))
        wait_for(lambda: len(seen) == i + 1, "the envelope upstream")  # noqa: B023
        how(smtp, raw)
    ok = mail(to=[ZOE])
    smtp = at_data(relay, [ZOE], len(ok))
    wait_for(lambda: ZOE in seen, "the last envelope upstream, before its message")
    smtp.send(body(ok))
    assert smtp.getreply()[0] == 250
    smtp.quit()
    (only,) = box.wait(1)
    assert only.rcpts == [ZOE]
    assert rows(relay.server.db, "SELECT recipient FROM messages") == [(ZOE,)]


def test_a_message_bigger_than_its_size_said_goes_one_copy_at_a_time(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    """SIZE is the client's word: a 3 MB message declared as 1 kB is not
    handed to the lanes waiting for it (each would hold a copy); its copies
    go one after the other on one session, whole."""
    box, _ = stub
    box.pipelining = True
    attachment = os.urandom(3 * 1024 * 1024)
    raw = mail(to=[ZOE, YAN], attachment=attachment)
    smtp = at_data(relay, [ZOE, YAN], 1000)
    smtp.send(body(raw))
    assert smtp.getreply()[0] == 250
    smtp.quit()
    copies = box.wait(2)
    assert sorted(c.rcpts[0] for c in copies) == sorted([YAN, ZOE])
    for c in copies:
        (part,) = [p for p in c.message.walk() if p.get_filename() == "data.bin"]
        assert part.get_payload(decode=True) == attachment


def test_after_a_kill_no_message_id_is_handed_out_again(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    """The relay's messages are committed without waiting for the disk (on
    SQLite) before their copies leave; a node that starts again, as after a
    power failure, skips ahead so no delivered copy's id is ever reused."""
    box, _ = stub
    assert relay.send(mail(to=[ZOE]), [ZOE]) == {}
    relaunch(relay)  # SIGKILL, then a new serve on the same store
    assert relay.send(mail(to=[YAN]), [YAN]) == {}
    box.wait(2)
    (before,), (after,) = rows(relay.server.db, "SELECT id FROM messages ORDER BY id")
    gap = ID_GAP if relay.server.db.startswith("sqlite") else 0
    assert after == before + 1 + gap


def test_clients_at_once_each_copy_once(relay: Relay, stub: tuple[Stub, Controller]) -> None:
    """Five clients submitting at the same moment: two begin early (the
    slots), the others send their envelopes after their message; every copy
    arrives once, to its own recipient, with its own message."""
    box, _ = stub
    box.pipelining = True
    clients = [[f"c{n}a@example.org", f"c{n}b@example.org"] for n in range(5)]

    def submit(rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
        return relay.send(mail(to=rcpts), rcpts)

    with ThreadPoolExecutor(len(clients)) as pool:
        assert list(pool.map(submit, clients)) == [{}] * len(clients)
    copies = box.wait(10)
    assert sorted(c.rcpts[0] for c in copies) == sorted(r for rc in clients for r in rc)
    stored = rows(relay.server.db, "SELECT recipient, sent_at FROM messages")
    assert sorted(r for r, _ in stored) == sorted(r for rc in clients for r in rc)
    assert all(sent is not None for _, sent in stored)
    pixels = {re.findall(r"/o/([^./\"]+)", c.html())[0] for c in copies}
    assert len(pixels) == 10
