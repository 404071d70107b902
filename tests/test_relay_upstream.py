"""The client to the sender's upstream, and the bounce reports it may cause."""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from mailbeacon.relay import dsn, upstream
from mailbeacon.relay.accounts import Upstream
from mailbeacon.relay.upstream import (
    CHUNK,
    Abandoned,
    Awaited,
    Pool,
    Reply,
    Session,
    UpstreamError,
    send_all,
)
from tests.helpers import free_port
from tests.relay_helpers import Stub


def _send(
    port: int,
    items: list[tuple[str, bytes]],
    options: tuple[str, ...] = (),
    pool: Pool | None = None,
) -> list:
    up = Upstream("127.0.0.1", port, "none")
    return send_all(
        up, "relay.test", "", "ana@example.com", options,
        [(r, (lambda d=d: d)) for r, d in items], True, time.monotonic() + 30, pool,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text", [b"", b"\n", b"a\n", b"\r\n", b"a\r\nb\nc", b"\r\r\n", b"\n\n", b"\r\n\n\r", b"\n."]
)
def test_the_fast_searches_find_what_the_plain_rules_say(text: bytes) -> None:
    """A bare LF is a LF no CR precedes; a stuffed dot follows a LF."""
    assert upstream._BARE_LF.sub(b"\r\n", text) == re.sub(rb"(?<!\r)\n", b"\r\n", text)
    assert bool(upstream._BARE_LF.search(text)) == (text.count(b"\n") != text.count(b"\r\n"))
    assert bool(upstream.LF_DOT.search(text)) == (b"\n." in text)


def test_data_is_streamed_dot_stuffed_and_crlf(stub: tuple[Stub, Controller]) -> None:
    body = b"Subject: x\r\n\r\n" + b"".join(b".dot %d\nbare lf\r\n" % i for i in range(40000))
    (reply,) = _send(stub[1].port, [("bob@example.org", body)], ("BODY=8BITMIME", "SMTPUTF8"))
    assert reply.ok and reply.at is not None
    (got,) = stub[0].deliveries
    # aiosmtpd undoes the dot-stuffing: lines starting with "." arrive whole.
    assert got.data == body.replace(b"\nbare", b"\r\nbare")
    assert got.options == ["BODY=8BITMIME", "SMTPUTF8", f"SIZE={len(body)}"]


def test_refusals_come_back_per_recipient(stub: tuple[Stub, Controller]) -> None:
    stub[0].rcpt_answer = lambda r: "550 5.1.1 no such user" if r.startswith("x") else None
    replies = _send(stub[1].port, [("x@example.org", b"a\r\n"), ("bob@example.org", b"b\r\n")])
    assert [r.code for r in replies] == [550, 250] and replies[0].permanent


def test_later_before_any_copy_stops_the_session(stub: tuple[Stub, Controller]) -> None:
    stub[0].data_answer = lambda: "451 4.3.0 try again"
    replies = _send(stub[1].port, [("a@example.org", b"a\r\n"), ("b@example.org", b"b\r\n")])
    assert replies[0] is not None and replies[0].code == 451 and replies[1] is None


def test_an_upstream_that_is_down_is_a_temporary_failure() -> None:
    replies = _send(free_port(), [("a@example.org", b"a\r\n")])
    assert replies[0].code == 451 and "unreachable" in replies[0].text


def test_starttls_is_required_unless_tls_none(stub: tuple[Stub, Controller]) -> None:
    up = Upstream("127.0.0.1", stub[1].port, "starttls")
    (reply,) = send_all(
        up, "relay.test", "", "a@b.co", (), [("x@y.co", lambda: b"x\r\n")], True, 1e18
    )
    assert reply is not None and reply.code == 454 and "STARTTLS" in reply.text


def test_the_pool_reuses_a_session_and_replaces_a_dead_one(stub: tuple[Stub, Controller]) -> None:
    box, ctl = stub
    pool = Pool()
    assert _send(ctl.port, [("a@example.org", b"a\r\n")], pool=pool)[0].ok
    assert _send(ctl.port, [("b@example.org", b"b\r\n")], pool=pool)[0].ok
    assert box.sessions == 1  # the second message went over the first one's session
    ctl.stop()  # the upstream restarts: the idle session is dead
    again = Controller(box, hostname="127.0.0.1", port=ctl.port)
    again.start()
    try:
        assert _send(ctl.port, [("c@example.org", b"c\r\n")], pool=pool)[0].ok
        assert box.sessions == 2 and box.deliveries[-1].rcpts == ["c@example.org"]
        assert pool.sweep(now=time.monotonic() + Pool.IDLE_SECONDS + 1) == 1  # idle too long
        assert _send(ctl.port, [("d@example.org", b"d\r\n")], pool=pool)[0].ok
        assert box.sessions == 3
    finally:
        pool.close()
        again.stop()


def test_no_write_waits_for_a_delayed_ack(stub: tuple[Stub, Controller]) -> None:
    """Nagle is off and the terminator rides with the message's tail: a
    separate 3-byte write after the data waited for the server's delayed ACK
    (40 ms per copy; bench/relay.py measured 64 -> 24 ms per copy)."""
    pool = Pool()
    session = pool.take(Upstream("127.0.0.1", stub[1].port, "none"), "relay.test", "")
    try:
        assert session.smtp is not None and session.smtp.sock is not None
        assert session.smtp.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writes: list[bytes] = []
        real = session.smtp.send

        def send(b: bytes | str) -> None:  # smtplib writes commands as str
            writes.append(b.encode() if isinstance(b, str) else bytes(b))
            real(b)

        session.smtp.send = send  # type: ignore[method-assign]
        body = b"Subject: x\r\n\r\n" + b"a line of the message\r\n" * 30_000  # 690 KB
        assert session.send("ana@example.com", "bob@example.org", body).ok
        data = writes[writes.index(b"data\r\n") + 1 :]
        assert len(data) == -(-len(body) // CHUNK)  # one write per 256 KB slice, no more
        assert data[-1].endswith(b"\r\n.\r\n") and len(data[-1]) > 5
    finally:
        pool.close()


def test_dsn_is_an_rfc3464_report() -> None:
    raw = dsn.build(
        sender="ana@example.com", reporting_mta="relay.test", remote_mta="mail.example.com",
        arrival=1.0, original_headers=b"Subject: Hi\r\nTo: bob@example.org\r\n", subject="Hi",
        failures=[
            dsn.Failure("bob@example.org", 550, "5.1.1 <bob@example.org>: User unknown", 2.0),
            dsn.Failure("cy@example.org", 0, "451 4.4.1 upstream unreachable", 3.0, expired=True),
        ],
    )  # fmt: skip
    m = message_from_bytes(raw)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    assert m["To"] == "ana@example.com" and m["Auto-Submitted"] == "auto-replied"
    human, status, headers = m.get_payload()  # type: ignore[misc]
    assert "bob@example.org" in human.get_payload(decode=True).decode()
    assert status.get_content_type() == "message/delivery-status"
    per_msg, bob, cy = status.get_payload()
    assert per_msg["Reporting-MTA"] == "dns; relay.test"
    assert (bob["Action"], bob["Status"]) == ("failed", "5.1.1")
    assert bob["Final-Recipient"] == "rfc822; bob@example.org"
    assert "550 5.1.1" in bob["Diagnostic-Code"]
    assert cy["Status"] == "4.4.7" and cy["Diagnostic-Code"] is None
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


class _OnePool(Pool):
    """A provider that allows one connection at a time: a session while
    another is in use is refused with 421."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = 0

    def take(self, up: Upstream, helo: str, cafile: str) -> Session:
        if self.busy:
            raise UpstreamError(Reply(421, "4.7.0 too many concurrent SMTP connections"))
        self.busy += 1
        return super().take(up, helo, cafile)

    def give(self, session: Session) -> None:
        self.busy -= 1
        super().give(session)


def test_with_a_size_the_envelope_goes_before_the_copy_is_made(
    stub: tuple[Stub, Controller],
) -> None:
    box, ctl = stub
    box.pipelining = True
    seen = threading.Event()
    box.rcpt_answer = lambda _r: seen.set()

    def make() -> bytes:  # the copy is made only once the upstream has the envelope
        assert seen.wait(10), "the envelope did not arrive before the copy was made"
        return b"Subject: x\r\n\r\nhi\r\n"

    up = Upstream("127.0.0.1", ctl.port, "none")
    (reply,) = send_all(up, "relay.test", "", "a@b.co", (), [("x@y.co", make)], True, 1e18,
                        size=30)  # fmt: skip
    assert reply is not None and reply.ok, reply
    (got,) = box.deliveries
    assert got.data == b"Subject: x\r\n\r\nhi\r\n" and got.options == ["SIZE=30"]


def test_a_copy_that_cannot_be_made_after_its_envelope_closes_the_session(
    stub: tuple[Stub, Controller],
) -> None:
    box, ctl = stub
    box.pipelining = True

    def make() -> bytes:
        raise RuntimeError("the store failed")

    pool = Pool()
    up = Upstream("127.0.0.1", ctl.port, "none")
    with pytest.raises(RuntimeError, match="the store failed"):
        send_all(up, "relay.test", "", "a@b.co", (), [("x@y.co", make)], True, 1e18, pool,
                 size=30)  # fmt: skip
    assert pool.sweep(now=float("inf")) == 0  # not kept: the upstream waits for a body
    assert _send(ctl.port, [("z@y.co", b"z\r\n")])[0].ok  # the upstream took nothing of it
    assert [d.rcpts for d in box.deliveries] == [["z@y.co"]]


@pytest.mark.parametrize("pool_kind", ["roomy", "one connection"])
def test_copies_side_by_side_and_when_only_one_session_opens(
    stub: tuple[Stub, Controller], pool_kind: str
) -> None:
    box, ctl = stub
    pool = Pool() if pool_kind == "roomy" else _OnePool()
    # Roomy: no copy is answered before the 3 lanes' sessions are open, or a
    # lane done early could hand its session to the next (2 sessions, not 3).
    box.hold_until_sessions = 3 if pool_kind == "roomy" else 0
    rcpts = [f"r{i}@example.org" for i in range(5)]
    with ThreadPoolExecutor(4) as lanes:
        replies = send_all(
            Upstream("127.0.0.1", ctl.port, "none"), "relay.test", "", "ana@example.com", (),
            [(r, (lambda r=r: f"To: {r}\r\n\r\nhi\r\n".encode())) for r in rcpts], True,
            time.monotonic() + 30, pool, 3, lanes,
        )  # fmt: skip
    pool.close()
    assert all(r is not None and r.ok for r in replies), replies
    # Each reply belongs to its own copy, whichever session carried it.
    assert sorted(d.rcpts[0] for d in box.deliveries) == rcpts
    assert all(d.data.startswith(f"To: {d.rcpts[0]}".encode()) for d in box.deliveries)
    assert box.sessions == (3 if pool_kind == "roomy" else 1)


@pytest.mark.parametrize(
    ("first", "waiter_gets"),
    [
        ("put", "value"),  # a second put changes nothing
        ("abandon", Abandoned),
        ("expire", Abandoned),  # a waiter's deadline passed: too late to put
    ],
)
def test_awaited_gives_the_value_to_every_waiter_or_to_none(
    first: str, waiter_gets: object
) -> None:
    """The hand-over between the client's message and the lanes holding its
    envelopes: either every lane gets the copy maker, or none does and
    ``put`` says so (the copies then go another way, none of them twice)."""
    box: Awaited[str] = Awaited(0.0 if first == "expire" else 30.0)
    if first == "put":
        assert box.put("value")
    elif first == "abandon":
        box.abandon()

    def wait(_: int) -> object:
        try:
            return box.get()
        except Abandoned:
            return Abandoned

    with ThreadPoolExecutor(3) as lanes:  # three lanes waiting at once
        got = list(lanes.map(wait, range(3)))
    assert got == [waiter_gets] * 3
    assert not box.put("late")
    box.abandon()  # a no-op once the value came
    assert first != "put" or box.get() == "value"


def test_awaited_wakes_waiters_when_the_value_comes() -> None:
    box: Awaited[str] = Awaited(30.0)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(box.get()))
    waiter.start()
    assert box.put("copy maker")
    waiter.join(10)
    assert got == ["copy maker"]
