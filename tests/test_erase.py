"""Erasure is complete: after `recipient erase` (CLI or API) no table holds the
person's address, subject or events, a replay of their deliveries sends
nothing, retention and opt-out reach the deliveries too, and addresses with
a "/" or in another case work in every route. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import Server, cli, execute, rows, start_server
from tests.helpers import cells_containing as traces
from tests.receivers import Receiver
from tests.traffic import FIREFOX, THUNDERBIRD, ago, hit

ADDRESS = "Mixed.Case/Dept@Example.org"  # "/" is valid in a local part (RFC 5322 atext)
SUBJECT = "Quarterly figures for Dept 7"
OTHER = "someone.else@example.org"
ALL_EVENTS = ["message.first_open", "message.first_click", "message.open", "message.click"]


def wait_delivered(srv: Server, hook_id: int, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        log = srv.api("GET", f"/api/v1/webhooks/{hook_id}/deliveries").json()
        done = [d for d in log if d["status"] == "delivered"]
        if len(done) >= n or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def srv(db_url: str, tmp_path: Path) -> Iterator[Server]:
    s = start_server(
        db_url,
        tmp_path,
        extra_args=["--trust-proxy", "127.0.0.0/8"],
        env={"MAILBEACON_WEBHOOK_ALLOW_INTERNAL": "true", "MAILBEACON_LOG_LEVEL": "debug"},
    )
    try:
        yield s
    finally:
        s.stop()


def tracked_person(srv: Server, receiver: Receiver) -> tuple[dict[str, Any], dict[str, Any]]:
    """A webhook, the person's message with an open and a click, delivered;
    and someone else's message that must survive the erase."""
    hook = srv.api("POST", "/api/v1/webhooks", json={"url": receiver.url, "events": ALL_EVENTS})
    assert hook.status_code == 201, hook.text
    msg = srv.message(
        recipient=ADDRESS, subject=SUBJECT, sent_at=ago(600), links=["https://example.com/offer"]
    )
    other = srv.message(recipient=OTHER, subject="Other", sent_at=ago(600))
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    hit(msg["links"][0]["tracked_url"], "198.51.100.20", FIREFOX)
    hit(other["open_url"], "203.0.113.5", THUNDERBIRD)
    # first_open, open, first_click, click for the person; first_open, open for the other.
    assert len(wait_delivered(srv, hook.json()["id"], 6)) == 6
    assert receiver.wait(6) and any(SUBJECT in b.decode() for _, b in receiver.received)
    return hook.json(), msg


@pytest.mark.parametrize("how", ["api", "cli"])
def test_erase_leaves_no_trace_and_replay_sends_nothing(
    srv: Server, receiver: Receiver, how: str
) -> None:
    hook, msg = tracked_person(srv, receiver)
    theirs = [
        d["id"]
        for d in srv.api("GET", f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        if d["message_id"] == msg["id"]
    ]
    assert len(theirs) == 4
    assert "outbox.payload" in traces(srv.db, ADDRESS, SUBJECT)

    typed = ADDRESS.upper()  # erase matches in any case
    if how == "api":
        r = srv.api("DELETE", f"/api/v1/recipients/{typed}/erase")
        assert r.status_code == 200, r.text
        assert r.json() == {"recipient": typed, "messages": 1, "events": 2, "deliveries": 4}
    else:
        out = cli("recipient", "erase", typed, db=srv.db).stdout
        assert "1 messages, 2 events, 4 deliveries" in out

    assert traces(srv.db, ADDRESS, SUBJECT) == []
    assert rows(srv.db, "SELECT count(*) FROM outbox WHERE message_id = ?", [msg["id"]]) == [(0,)]
    # Someone else's data and deliveries are untouched.
    assert traces(srv.db, OTHER) != []
    assert len(srv.api("GET", f"/api/v1/webhooks/{hook['id']}/deliveries").json()) == 2

    sent = len(receiver.received)
    for did in theirs:
        r = srv.api("POST", f"/api/v1/webhooks/deliveries/{did}/replay")
        assert r.status_code == 404, r.text
    assert rows(srv.db, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(0,)]
    assert len(receiver.received) == sent
    # The server logs nothing about the person, even at debug level.
    assert ADDRESS.lower() not in srv.output().lower()
    assert SUBJECT.lower() not in srv.output().lower()


def test_purge_and_retention_days_delete_old_deliveries(
    srv: Server, receiver: Receiver, tmp_path: Path
) -> None:
    hook, msg = tracked_person(srv, receiver)
    for sql in ("UPDATE events SET at = at - ?", "UPDATE outbox SET created_at = created_at - ?"):
        execute(srv.db, sql, [40 * 86400])
    out = cli("purge", "--older-than", "30d", db=srv.db).stdout
    assert "3 events and 6 deliveries older than 30d purged" in out, out
    assert rows(srv.db, "SELECT count(*) FROM outbox") == [(0,)]
    assert "outbox.payload" not in traces(srv.db, ADDRESS, SUBJECT)

    # serve with retention_days does the same on its own, at start.
    other = srv.message(recipient=OTHER, sent_at=ago(600))
    hit(other["open_url"], "203.0.113.5", THUNDERBIRD)
    assert wait_delivered(srv, hook["id"], 1)
    execute(srv.db, "UPDATE outbox SET created_at = created_at - ?", [40 * 86400])
    srv.stop()
    again = start_server(srv.db, tmp_path, key=srv.key, env={"MAILBEACON_RETENTION_DAYS": "30"})
    try:
        deadline = time.monotonic() + 15
        while rows(srv.db, "SELECT count(*) FROM outbox") != [(0,)]:
            assert time.monotonic() < deadline, "retention_days left old deliveries"
            time.sleep(0.2)
        assert "deliveries older than 30 days purged" in again.output()
    finally:
        again.stop()


def test_optout_cancels_pending_deliveries_and_forgets_their_payload(
    srv: Server,
) -> None:
    down = Receiver(fail=-1)  # answers 500 to everything: deliveries stay pending
    try:
        srv.api("POST", "/api/v1/webhooks", json={"url": down.url, "events": ["message.open"]})
        msg = srv.message(recipient=ADDRESS, subject=SUBJECT, sent_at=ago(600))
        hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
        down.wait_calls(1)  # a first attempt has built and stored the payload
        assert "outbox.payload" in traces(srv.db, SUBJECT)
        r = srv.api("POST", f"/api/v1/recipients/{ADDRESS.lower()}/optout")
        assert r.status_code == 200 and r.json()["changed"]
        assert rows(srv.db, "SELECT status, payload, last_error FROM outbox") == [
            ("cancelled", None, "recipient opted out")
        ]
    finally:
        down.close()


@pytest.mark.parametrize("spelled", ["a/b@example.com", "a%2Fb@example.com", "A/B@Example.COM"])
def test_addresses_with_a_slash_work_in_every_route(api: TestClient, spelled: str) -> None:
    made = api.post("/api/v1/messages", json={"recipient": "a/b@example.com"})
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    base = f"/api/v1/recipients/{spelled}"

    r = api.get(f"{base}/export")
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["messages"]] == [mid]
    r = api.post(f"{base}/optout")
    assert r.status_code == 200 and r.json() == {
        "recipient": "a/b@example.com",
        "opted_out": True,
        "changed": True,
    }
    r = api.delete(f"{base}/optout")  # not taken for "erase a/b@example.com/optout"
    assert r.status_code == 200 and r.json()["opted_out"] is False and r.json()["changed"]
    r = api.delete(f"{base}/erase")
    assert r.status_code == 200 and r.json()["messages"] == 1
    api.post("/api/v1/messages", json={"recipient": "a/b@example.com"})
    r = api.delete(base)
    assert r.status_code == 200 and r.json()["messages"] == 1
    assert api.get(f"{base}/export").json()["messages"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/recipients/no-at-sign/export",
        "/api/v1/recipients/a@example.com/b/export",  # "/" after the "@": no address
        "/api/v1/recipients/@example.com/export",
    ],
)
def test_what_is_no_address_is_422(api: TestClient, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 422 and "email address" in r.json()["message"]
