"""The relay while its database is down: a 4xx, never aiosmtpd's 500.

A 4xx keeps the message with the client, which sends it again (RFC 5321
4.2.5); a 500 would make it give the message up. Nothing goes upstream while
the messages cannot be recorded, and once the store is back the same message
goes out, one copy per recipient. On SQLite the write lock is held (the
submission waits out the busy timeout, 5 s); on PostgreSQL the database
refuses connections, so the sender's hourly count at MAIL already fails.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import outage
from tests.relay_helpers import Stub, mail, start_relay

pytestmark = pytest.mark.process


def test_a_store_down_is_451_and_the_message_goes_once_it_is_back(
    db_url: str, tmp_path: Path, stub: tuple[Stub, Controller]
) -> None:
    box, ctl = stub
    relay = start_relay(db_url, tmp_path, ctl.port)
    try:
        raw = mail(to=["bob@example.org", "cy@example.org"])
        rcpts = ["bob@example.org", "cy@example.org"]
        smtp = relay.client()  # logged in first: AUTH reads the store too
        try:
            with outage(db_url), pytest.raises(smtplib.SMTPResponseException) as refused:
                smtp.sendmail(relay.login, rcpts, raw)
            code, text = refused.value.smtp_code, refused.value.smtp_error.decode()
            assert code == 451, text
            assert "database" in text and "send again later" in text
            assert "Error" not in text and "sqlalchemy" not in text.lower()  # no driver's words
            assert box.deliveries == []
            # The same session goes on once the store is back.
            smtp.rset()
            assert smtp.sendmail(relay.login, rcpts, raw) == {}
        finally:
            smtp.close()
        got = box.wait(2)
        assert sorted(d.rcpts[0] for d in got) == rcpts
        assert "relay: the store failed" in relay.server.output()
    finally:
        relay.server.stop()
