"""Limits: per-sender rate, 8BITMIME/SMTPUTF8, memory for a big attachment.

The stub is the upstream here: it records the MAIL FROM parameters it was
handed. The 552 for size is in test_relay_auth.py with the other refusals;
bench/relay.py measures memory with Postfix as the upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import cli
from tests.relay_helpers import Delivery, Relay, Stub, mail, start_relay


@pytest.fixture
def relay(sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]) -> Iterator[Relay]:
    r = start_relay(sqlite_url, tmp_path, stub[1].port)
    try:
        yield r
    finally:
        r.server.stop()


def test_rate_limit_per_sender(relay: Relay, stub: tuple[Stub, Controller]) -> None:
    cli("senders", "set", relay.login, "--rate", "3", db=relay.server.db)
    assert relay.send(mail(), ["a@example.org", "b@example.org"]) == {}
    refused = relay.send(mail(), ["c@example.org", "d@example.org"])
    assert list(refused) == ["d@example.org"] and refused["d@example.org"][0] == 450
    with relay.client() as smtp:
        code, msg = smtp.mail(relay.login)
        assert code == 450 and b"last hour" in msg
    assert len(stub[0].wait(3)) == 3


def test_a_pipelined_envelope_never_declares_less_than_the_copy(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    """With PIPELINING an envelope can leave before its copy exists.

    A client that declared its SIZE has each copy's envelope sent at its DATA
    command, before the message is in: no SIZE goes upstream then (the copy's
    size is not known). Without the client's SIZE the envelope goes once the
    message is in: a copy that only gains a pixel declares an estimate (RFC
    1870), never less than the copy the upstream gets; one whose links are
    rewritten too (here 2.2x the message) is made first and declared exactly."""
    stub[0].pipelining = True
    links = "".join(f'<p><a href="https://example.com/p{i}">offer {i}</a></p>' for i in range(40))
    raw = mail(to=["zoe@example.org"], html=links)

    def declared(got: Delivery) -> list[int]:
        return [int(o.split("=", 1)[1]) for o in got.options if o.upper().startswith("SIZE=")]

    def send(with_size: bool) -> None:
        with relay.client() as smtp:
            if not with_size:
                smtp.esmtp_features.pop("size")  # smtplib then sends no SIZE=
            assert smtp.sendmail(relay.login, ["zoe@example.org"], raw) == {}

    send(with_size=True)  # default: opens
    send(with_size=False)
    early, opens = stub[0].wait(2)
    assert declared(early) == [] and len(early.data) > len(raw)
    assert declared(opens)[0] >= len(opens.data) > len(raw)
    cli("senders", "set", relay.login, "--track", "all", db=relay.server.db)
    send(with_size=True)
    send(with_size=False)
    early, clicks = stub[0].wait(4)[2:]
    assert declared(early) == [] and len(early.data) > 2 * len(raw)
    assert declared(clicks) == [len(clicks.data)] and len(clicks.data) > 2 * len(raw)


def test_8bitmime_and_smtputf8_pass_through(relay: Relay, stub: tuple[Stub, Controller]) -> None:
    raw = mail(to=["zoe@example.org"], html="<p>Olá, café</p>").replace(
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 8bit"
    )
    with relay.client() as smtp:
        smtp.sendmail(relay.login, ["zoë@example.org"], raw,
                      mail_options=["SMTPUTF8", "BODY=8BITMIME"])  # fmt: skip
    (got,) = stub[0].wait(1)
    assert got.rcpts == ["zoë@example.org"]
    assert "SMTPUTF8" in got.options and "BODY=8BITMIME" in got.options


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_memory_for_a_25_mb_attachment_to_3_recipients(
    sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    relay = start_relay(sqlite_url, tmp_path, stub[1].port)
    try:
        relay.send(mail(), ["warm@example.org"])  # imports and caches: the baseline
        stub[0].wait(1)
        before = _peak_rss(relay.server.proc.pid)
        raw = mail(attachment=os.urandom(25 * 1024 * 1024))
        rcpts = ["bob@example.org", "cy@example.org", "dee@example.org"]
        assert relay.send(raw, rcpts) == {}
        got = stub[0].wait(4)[1:]
        growth = _peak_rss(relay.server.proc.pid) - before
        ratio = growth / len(raw)
        print(f"\n25 MB attachment ({len(raw) / 1e6:.1f} MB message) to 3 recipients: "
              f"peak RSS grew {growth / 1e6:.0f} MB = {ratio:.2f} x the message")  # fmt: skip
        att = raw[raw.index(b"Content-Disposition: attachment") :]
        assert all(att in d.data for d in got)  # byte-identical in every copy
        # Issue 14's target is 3x; the relay measures 1.6-1.8x, and 2.5x was
        # glibc keeping freed big buffers in the heap (mailbeacon/malloc.py).
        assert growth < 2.2 * len(raw), f"{growth / len(raw):.2f} x the message size"
    finally:
        relay.server.stop()
