"""The first human open of a message emails the sender, through a real SMTP
server (aiosmtpd), via the outbox: a refused send is retried."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.helpers import Server, free_port, rows, start_server, wait_for, wait_rounds

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"


class Inbox:
    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.tries = 0
        self.mails: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.tries += 1
        if self.tries <= self.refuse:
            return "451 4.3.0 try again later"
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox(refuse=1)
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, port
    ctl.stop()


@pytest.fixture
def notifying(db_url: str, tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[Server]:
    env = {
        "MAILBEACON_SMTP_HOST": "127.0.0.1",
        "MAILBEACON_SMTP_PORT": str(inbox[1]),
        "MAILBEACON_SMTP_FROM": "beacon@example.com",
        "MAILBEACON_NOTIFY_EMAIL": "sender@example.com",
        "MAILBEACON_WEBHOOK_BACKOFF_BASE": "0.2",
    }
    srv = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"], env=env)
    try:
        yield srv
    finally:
        srv.stop()


def hit(url: str, ip: str, ua: str) -> None:
    r = httpx.get(url, headers={"User-Agent": ua, "X-Forwarded-For": ip})
    assert r.headers["x-mailbeacon-recorded"] == "yes"


def test_first_human_open_emails_the_sender_once(
    notifying: Server, inbox: tuple[Inbox, int]
) -> None:
    box, _port = inbox
    msg = notifying.message(
        recipient="ana@example.com", subject="Our proposal", sent_at=time.time() - 900
    )
    hit(msg["open_url"], "172.224.226.5", "Mozilla/5.0")  # a prefetch: no email
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)  # the read
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)  # read again: still one email
    wait_for(lambda: box.mails, "the notification email", 20)
    # Every notification is an outbox row written with its hit, so once the
    # rows are all delivered and two more rounds found nothing, no other
    # email is on its way.
    wait_for(lambda: rows(notifying.db, "SELECT count(*) FROM outbox WHERE status != 'delivered'")
             == [(0,)], "every notification delivered")  # fmt: skip
    wait_rounds(notifying.url, "outbox", 2)
    assert len(box.mails) == 1 and box.tries == 2  # refused once, retried
    mail = box.mails[0]
    assert mail["To"] == "sender@example.com" and mail["From"] == "beacon@example.com"
    assert "Our proposal" in mail["Subject"] and "ana@example.com" in mail["Subject"]
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "ana@example.com" in body and f"/messages/{msg['id']}" in body
    assert "Thunderbird" in body
    assert rows(notifying.db, "SELECT channel, status, attempts FROM outbox") == [
        ("email", "delivered", 2)
    ]


def test_an_overdue_reminder_emails_the_sender_once(
    notifying: Server, inbox: tuple[Inbox, int]
) -> None:
    box, _port = inbox
    msg = notifying.message(
        recipient="bo@example.com", subject="Our offer", sent_at=time.time() - 4 * 86400
    )
    body = {"message_id": msg["id"], "if": "not_replied", "after": "3d"}
    r = notifying.api("POST", "/api/v1/reminders", json=body)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 30
    while not box.mails and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(box.mails) == 1  # refused once, retried: still one
    mail = box.mails[0]
    assert mail["Subject"].startswith("Follow up? bo@example.com has not replied to")
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "after 3d" in text and f"/messages/{msg['id']}" in text
    # The worker marks the row once the SMTP server's reply is back: the mail
    # can be in the inbox a moment before that.
    outbox = "SELECT event_type, status FROM outbox"
    deadline = time.monotonic() + 30
    while rows(notifying.db, outbox) != [("message.reminder", "delivered")]:
        assert time.monotonic() < deadline, rows(notifying.db, outbox)
        time.sleep(0.1)
    assert len(box.mails) == 1
