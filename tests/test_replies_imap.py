"""One look at a real Dovecot mailbox: what is recorded, and that nothing changes there.

In process (check.check called directly, jobs are called instead of slept
for) against the private Dovecot of tests/mailservers; the recorder is the
real one, so rollups and dedupe run as in `serve`.
"""

from __future__ import annotations

import asyncio
import imaplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mailbeacon import config
from mailbeacon.hits.recorder import Recorder
from mailbeacon.mailboxes import service
from mailbeacon.mailboxes.check import Context, check
from mailbeacon.mailboxes.imap import Session
from mailbeacon.mailboxes.url import parse
from mailbeacon.mailboxes.watcher import blocking
from mailbeacon.messages import create_message
from mailbeacon.store import events as event_store
from mailbeacon.store import keys, make_engine, upgrade
from mailbeacon.store import mailboxes as box_store
from tests.mailservers import Dovecot
from tests.replies_helpers import dsn, mail, mid


@dataclass
class World:
    engine: Engine
    settings: config.Settings
    dovecot: Dovecot
    sender: str
    password: str
    recorder: Recorder
    loop: asyncio.AbstractEventLoop

    def message(self, recipient: str, subject: str, header: str | None) -> int:
        with self.engine.begin() as conn:
            made = create_message(
                conn, keys.ensure_signer(self.engine), "https://t.example", recipient=recipient,
                subject=subject, sent_at=time.time() - 3600, message_id_header=header,
            )  # fmt: skip
        return int(made["id"])

    def look(self) -> int:
        box = box_store.get(self.engine, self.sender)
        assert box is not None
        box_store.take_lease(self.engine, box.id, "test-node", 60, now=2e9)
        ctx = Context(
            engine=self.engine, box=box, owner="test-node", own=frozenset({self.sender}),
            add=blocking(self.recorder.add, self.loop, 10),
        )  # fmt: skip
        url = parse(box.imap_url, self.password)
        session = Session(url)
        try:
            folder = session.open()
            last = box.last_uid if box.uidvalidity == folder.uidvalidity else None
            check(ctx, session, folder, last)
        finally:
            session.close()
        return ctx.recorded

    def events(self, message_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return event_store.list_events(conn, message_id=message_id)


@pytest.fixture
def world(dovecot: Dovecot, sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    settings = config.load(db=sqlite_url, data_dir=str(tmp_path / "data"))
    sender, password = dovecot.add_user(dovecot.address("sender"))
    service.add(engine, settings, sender, dovecot.imap_url(sender))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    recorder = Recorder(engine)
    loop.call_soon_threadsafe(recorder.start, loop)
    try:
        yield World(engine, settings, dovecot, sender, password, recorder, loop)
    finally:
        recorder.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        engine.dispose()


def test_answers_are_recorded_and_the_mailbox_is_left_as_it_was(
    world: World, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.sender
    m1, m2, m3, m4 = mid("m1"), mid("m2"), mid("m3"), mid("m4")
    human = world.message("ana@example.com", "Proposal", m1)
    ooo = world.message("bo@example.com", "Offer", m2)
    copy_dee = world.message("dee@example.net", "Invite", m3)
    copy_eve = world.message("eve@example.net", "Invite", m3)  # same Message-ID: relay copies
    webmail = world.message("fay@example.com", "Quarterly numbers", m4)
    deliveries = [
        mail("Ana <ana@example.com>", s, "Re: Proposal", in_reply_to=m1, references=m1),
        mail("carl@colleague.example", s, "Re: Proposal", references=f"{m1} {mid()}"),
        mail(
            "bo@example.com",
            s,
            "Automatic reply: Offer",
            in_reply_to=m2,
            headers={"Auto-Submitted": "auto-replied"},
        ),
        dsn(s, "dee@example.net", m3, "Invite"),
        mail("fay@example.com", s, "RE: Quarterly numbers"),  # webmail stripped the thread
        mail("ana@example.com", s, "Lunch on Friday?"),  # unrelated: no match
        mail(s, s, "Re: Proposal", in_reply_to=m1),  # the sender's own copy
    ]
    for raw in deliveries:
        dovecot.deliver(raw, s)
    dovecot.store(s, [mail("ana@example.com", s, "Re: Proposal", in_reply_to=m1,
                           message_id=mid("seen"))], flags=["\\Seen"])  # fmt: skip
    before = dovecot.flags(s)
    assert len(before) == len(deliveries) + 1

    sent: list[bytes] = []
    real_send = imaplib.IMAP4.send

    def spy(self: imaplib.IMAP4, data: bytes) -> None:
        sent.append(bytes(data))
        real_send(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", spy)
    assert world.look() == 6

    got = {
        mid_: [(e["label"], e["from"], e["reasons"]) for e in world.events(mid_)]
        for mid_ in (human, ooo, copy_dee, copy_eve, webmail)
    }
    assert got[human][0][:2] == ("human", "ana@example.com")
    assert "thread:in_reply_to" in got[human][0][2]
    assert got[human][1][:2] == ("human", "carl@colleague.example")
    assert "from:other_address" in got[human][1][2]
    assert got[human][2][:2] == ("human", "ana@example.com")  # the one already read (\\Seen)
    assert len(got[human]) == 3  # not "Lunch on Friday?", not the sender's own copy
    assert [(lab, frm) for lab, frm, _ in got[ooo]] == [("auto_reply", "bo@example.com")]
    assert [lab for lab, *_ in got[copy_dee]] == ["bounce"] and got[copy_eve] == []
    assert "thread:returned_message" in got[copy_dee][0][2]
    assert [lab for lab, *_ in got[webmail]] == ["human"]
    assert "fallback:subject" in got[webmail][0][2]

    # Read-only: EXAMINE, never SELECT; PEEK fetches only; no flag moved.
    commands = b"\n".join(sent).upper()
    assert b" EXAMINE " in commands and b" SELECT " not in commands
    for verb in (b" STORE ", b" EXPUNGE", b" COPY ", b" MOVE ", b" APPEND "):
        assert verb not in commands
    fetches = [line for line in commands.split(b"\r\n") if b" FETCH " in line]
    assert fetches and all(b"BODY[" not in f and b"RFC822" not in f for f in fetches)
    assert any(b"HEADER.FIELDS" in f for f in fetches)
    assert dovecot.flags(s) == before

    # A second look from scratch (a new UIDVALIDITY) records nothing again.
    _forget_checkpoint(world)
    assert world.look() == 0


def _forget_checkpoint(world: World) -> None:
    from sqlalchemy import update

    from mailbeacon.store.schema import mailboxes

    with world.engine.begin() as conn:
        conn.execute(update(mailboxes).values(last_uid=None, uidvalidity=None))


def test_text_rfc822_headers_report_and_a_delay_notice(world: World, dovecot: Dovecot) -> None:
    s = world.sender
    m = mid("r")
    bounced = world.message("gus@example.org", "Hello", m)
    dovecot.deliver(dsn(s, "gus@example.org", m, "Hello", action="delayed"), s)
    dovecot.deliver(dsn(s, "gus@example.org", m, "Hello", returned="text/rfc822-headers"), s)
    assert world.look() == 2
    labels = sorted((e["label"], e["reasons"][0]) for e in world.events(bounced))
    assert labels == [("auto_reply", "dsn:delayed"), ("bounce", "dsn:failed")]
