"""One copy per recipient through a real relay process, to an upstream stub."""

from __future__ import annotations

import re

from aiosmtpd.controller import Controller

from tests.helpers import rows
from tests.relay_helpers import Relay, Stub, mail

PIXEL = re.compile(r"/o/([A-Za-z0-9_-]+)\.gif")
CLICK = re.compile(r"/c/([A-Za-z0-9_-]+)")


def test_one_copy_per_recipient_with_its_own_pixel(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    to, cc, bcc = ["bob@example.org", "cy@example.org"], ["dee@example.net"], ["eve@example.com"]
    raw = mail(to=to, cc=cc, bcc=bcc)
    assert b"Bcc:" in raw  # what some clients really submit
    refused = relay.send(raw, [*to, *cc, *bcc])
    assert refused == {}
    got = stub[0].wait(4)
    assert sorted(d.rcpts[0] for d in got) == sorted([*to, *cc, *bcc])
    tokens = set()
    for d in got:
        assert len(d.rcpts) == 1 and d.mail_from == "ana@example.com"
        assert b"Bcc" not in d.data and b"eve@example.com" not in d.data.split(b"\r\n\r\n")[0]
        m = d.message
        assert m["To"] == "bob@example.org, cy@example.org" and m["Cc"] == "dee@example.net"
        assert m["Message-ID"] == "<proposal-1@example.com>"
        assert m["Subject"] == "Our proposal"
        (token,) = set(PIXEL.findall(d.html()))  # background, CSS and VML: one pixel
        tokens.add(token)
        assert not CLICK.findall(d.html())  # default tracking: opens only
    assert len(tokens) == 4
    stored = rows(
        relay.server.db,
        "SELECT recipient, sent_at, message_id_header FROM messages ORDER BY recipient",
    )
    assert [r[0] for r in stored] == sorted([*to, *cc, *bcc])
    assert all(r[1] is not None and r[2] == "<proposal-1@example.com>" for r in stored)
