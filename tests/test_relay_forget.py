"""Deleting a campaign or erasing a recipient takes the relay's queue rows too.

A copy the relay holds names its recipient (and its submission's headers
name everyone it went to): after `DELETE /api/v1/campaigns/{id}` or an erase
nothing of them is left in any table, and a copy not sent yet is never sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiosmtpd.controller import Controller

from tests.helpers import cells, rows
from tests.relay_helpers import Relay, Stub, mail

LATER = "carl@example.net"  # the upstream says "not now": the copy waits in the queue


def wait(cond: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def send_with_one_queued(relay: Relay, stub: Stub, campaign: str) -> None:
    stub.rcpt_answer = lambda r: "451 4.3.0 not now" if r == LATER else None
    raw = mail(to=["bob@example.org", LATER], extra_headers=[f"X-Mailbeacon-Campaign: {campaign}"])
    assert relay.send(raw, ["bob@example.org", LATER]) == {}
    stub.wait(1)
    db = relay.server.db
    wait(lambda: rows(db, "SELECT count(*) FROM relay_copies") == [(2,)], "two copies")


def traces(db: str, needle: str) -> list[tuple[str, str]]:
    found = []
    for table, column, value in cells(db):
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if needle in text.lower():
            found.append((table, column))
    return found


def test_deleting_a_campaign_drops_its_queued_copies(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    send_with_one_queued(relay, stub[0], "Launch")
    db = relay.server.db
    (campaign,) = relay.server.api("GET", "/api/v1/campaigns").json()
    r = relay.server.api("DELETE", f"/api/v1/campaigns/{campaign['id']}")
    assert r.status_code == 200, r.text
    assert rows(db, "SELECT count(*) FROM relay_copies") == [(0,)]
    assert rows(db, "SELECT count(*) FROM relay_submissions") == [(0,)]
    assert traces(db, "bob@example.org") == [] and traces(db, LATER) == []


def test_erasing_a_recipient_drops_their_copy_and_keeps_the_others(
    relay: Relay, stub: tuple[Stub, Controller]
) -> None:
    send_with_one_queued(relay, stub[0], "Launch")
    db = relay.server.db
    r = relay.server.api("DELETE", f"/api/v1/recipients/{LATER}/erase")
    assert r.status_code == 200, r.text
    assert rows(db, "SELECT recipient FROM relay_copies") == [("bob@example.org",)]
    # The submission stays for bob's copy (its To: header names both, as sent).
    assert rows(db, "SELECT count(*) FROM relay_submissions") == [(1,)]
    assert {t for t, _c in traces(db, LATER)} == {"relay_submissions"}
