"""Nothing lost: 4xx back to the client, the durable queue, bounce reports, several nodes."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import rows, start_server
from tests.relay_helpers import Stub, mail, relaunch, start_relay


def _wait(cond: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_upstream_down_at_submit_is_4xx_and_leaves_nothing(
    db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    relay = start_relay(db_url, tmp_path, stub[1].port)
    try:
        stub[1].stop()  # the sender's server is down
        with pytest.raises(smtplib.SMTPDataError) as exc:
            relay.send(mail(to=["bob@example.org", "cy@example.org"]),
                       ["bob@example.org", "cy@example.org"])  # fmt: skip
        assert 400 <= exc.value.smtp_code < 500
        assert rows(db_url, "SELECT count(*) FROM messages") == [(0,)]
        assert rows(db_url, "SELECT count(*) FROM relay_copies") == [(0,)]
    finally:
        relay.server.stop()


def test_failure_after_acceptance_is_queued_and_survives_sigkill(
    db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    box = stub[0]
    relay = start_relay(db_url, tmp_path, stub[1].port)
    try:
        taken = [0]

        def first_only() -> str | None:
            taken[0] += 1
            return None if taken[0] == 1 else "451 4.3.0 disk full, try later"

        box.data_answer = first_only
        rcpts = ["bob@example.org", "cy@example.org", "dee@example.org"]
        assert relay.send(mail(to=rcpts), rcpts) == {}  # 250: one sent, two queued durably
        assert [d.rcpts for d in box.deliveries] == [["bob@example.org"]]
        relay.server.kill()  # SIGKILL: nothing is flushed on the way out
        assert rows(db_url, "SELECT status FROM relay_copies ORDER BY id") == [
            ("sent",),
            ("pending",),
            ("pending",),
        ]
        box.data_answer = lambda: None  # the upstream is back
        relaunch(relay)
        got = box.wait(3)
        assert sorted(d.rcpts[0] for d in got) == sorted(rcpts)
        _wait(lambda: rows(db_url, "SELECT count(*) FROM messages WHERE sent_at IS NULL")
              == [(0,)], "sent_at on every copy")  # fmt: skip
        assert len(got) == 3  # no copy twice
        (sub,) = rows(db_url, "SELECT data FROM relay_submissions")
        assert sub[0] is None  # dropped once every copy left
    finally:
        relay.server.stop()


def test_permanent_refusal_sends_a_report_to_the_sender(
    db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    box = stub[0]
    box.rcpt_answer = lambda r: (
        "550 5.1.1 <gone@example.org>: user unknown" if "gone" in r else None
    )
    relay = start_relay(db_url, tmp_path, stub[1].port)
    try:
        rcpts = ["bob@example.org", "gone@example.org"]
        assert relay.send(mail(to=rcpts, subject="Quote"), rcpts) == {}
        got = box.wait(2)
        report = next(d for d in got if d.rcpts == ["ana@example.com"])
        m = report.message
        assert m.get_content_type() == "multipart/report"
        assert m["Subject"] == "Undelivered Mail Returned to Sender: Quote"
        status = m.get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
        assert status["Final-Recipient"] == "rfc822; gone@example.org"
        assert status["Status"] == "5.1.1"
        assert rows(db_url, "SELECT recipient, status, last_code FROM relay_copies "
                    "WHERE message_id IS NOT NULL ORDER BY recipient") == [
            ("bob@example.org", "sent", 250), ("gone@example.org", "failed", 550)
        ]  # fmt: skip
    finally:
        relay.server.stop()


def test_retries_give_up_after_max_age_with_a_report(
    sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    box = stub[0]
    box.rcpt_answer = lambda r: "451 4.2.0 mailbox busy" if "slow" in r else None
    relay = start_relay(sqlite_url, tmp_path, stub[1].port, env={"MAILBEACON_RELAY_MAX_AGE": "2"})
    try:
        rcpts = ["bob@example.org", "slow@example.org"]
        assert relay.send(mail(to=rcpts), rcpts) == {}
        got = box.wait(2)
        report = next(d for d in got if d.rcpts == ["ana@example.com"])
        status = report.message.get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
        assert status["Status"] == "4.4.7" and status["Action"] == "failed"
        (tries,) = rows(
            sqlite_url, "SELECT attempts FROM relay_copies WHERE recipient LIKE 'slow%'"
        )
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
        _wait(lambda: rows(db_url, "SELECT count(*) FROM relay_copies WHERE status = 'pending'")
              == [(0,)], "an empty queue")  # fmt: skip
        time.sleep(1.5)  # a duplicate would arrive within a poll or two
        sent = [d.rcpts[0] for d in box.deliveries]
        assert len(sent) == len(set(sent)) == 48
    finally:
        relay.server.stop()
        if second is not None:
            second.stop()
