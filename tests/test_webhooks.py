"""Webhooks end to end: a real receiver that fails, then recovers, and gets
every event exactly as signed; the delivery log and a replay."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailbeacon.notify.deliver import sign, verify
from mailbeacon.store.outbox import backoff
from tests.helpers import Server, rows, start_server, wait_for
from tests.receivers import Receiver

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(fail=3)
    yield rec
    rec.close()


@pytest.fixture
def tracked(db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(
        db_url,
        tmp_path,
        extra_args=["--trust-proxy", "127.0.0.0/8"],
        # The receivers here listen on 127.0.0.1, an internal address.
        env={"MAILBEACON_WEBHOOK_BACKOFF_BASE": "0.2", "MAILBEACON_WEBHOOK_ALLOW_INTERNAL": "1"},
    )
    try:
        yield srv
    finally:
        srv.stop()


def hit(url: str, ip: str, ua: str) -> None:
    r = httpx.get(url, headers={"User-Agent": ua, "X-Forwarded-For": ip})
    assert r.headers["x-mailbeacon-recorded"] == "yes"


def test_signature_scheme() -> None:
    body = b'{"id":1}'
    header = sign("whsec_test", body, t=int(time.time()))
    assert header.startswith("t=") and ",v1=" in header
    assert verify("whsec_test", body, header)
    assert not verify("whsec_other", body, header)
    assert not verify("whsec_test", body + b" ", header)
    assert not verify("whsec_test", body, sign("whsec_test", body, t=int(time.time()) - 3600))


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert 1.6 <= backoff(2, 1) <= 2.4 and 3.2 <= backoff(2, 2) <= 4.8
    assert backoff(2, 40) <= 3600 * 1.2


def test_api_validates_and_lists(tracked: Server) -> None:
    bad = tracked.api("POST", "/api/v1/webhooks", json={"url": "ftp://x", "events": ["x"]})
    assert bad.status_code == 422
    bad = tracked.api(
        "POST", "/api/v1/webhooks", json={"url": "https://e.com/h", "events": ["message.nope"]}
    )
    assert bad.status_code == 422 and "unknown event types" in bad.json()["message"]
    r = tracked.api(
        "POST", "/api/v1/webhooks", json={"url": "https://e.com/h", "events": ["message.open"]}
    )
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    listed = tracked.api("GET", "/api/v1/webhooks").json()
    assert [w["id"] for w in listed] == [r.json()["id"]] and "secret" not in listed[0]
    assert tracked.api("DELETE", f"/api/v1/webhooks/{r.json()['id']}").status_code == 204
    assert tracked.api("GET", "/api/v1/webhooks").json() == []
    assert tracked.api("DELETE", "/api/v1/webhooks/999").status_code == 404
    assert httpx.get(tracked.url + "/api/v1/webhooks").status_code == 401


def test_failing_receiver_gets_every_event_after_it_recovers(
    tracked: Server, receiver: Receiver
) -> None:
    hook = tracked.api(
        "POST",
        "/api/v1/webhooks",
        json={
            "url": receiver.url,
            "events": ["message.first_open", "message.open", "message.click"],
        },
    ).json()
    msg = tracked.message(sent_at=time.time() - 600, links=["https://example.com/offer"])
    machine = tracked.message(sent_at=time.time() - 600)
    hit(machine["open_url"], "198.51.100.9", "python-requests/2.31")  # a bot: no webhook
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    assert receiver.wait_calls(1) >= 1  # the first attempt (after the hold) was refused
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    hit(msg["links"][0]["tracked_url"], "198.51.100.20", FIREFOX)

    got = receiver.wait(4)
    assert receiver.calls >= 3 + 4  # three refusals, then everything
    assert sorted(p["type"] for p in got) == [
        "message.click",
        "message.first_open",
        "message.open",
        "message.open",
    ]
    for headers, body in receiver.received:
        assert verify(hook["secret"], body, headers["mailbeacon-signature"])
        payload = json.loads(body)
        assert headers["mailbeacon-delivery"] == str(payload["id"])  # idempotency key
        assert payload["data"]["message"]["id"] == msg["id"]
        assert payload["data"]["event"]["label"] in ("human_direct", "human")
        assert "ip" not in payload["data"]["event"]
    assert len({p["id"] for p in got}) == 4

    def all_delivered() -> list[dict[str, Any]] | None:
        # The receiver may see the last one before the dispatcher writes it down.
        log = tracked.api("GET", f"/api/v1/webhooks/{hook['id']}/deliveries").json()
        return log if len(log) == 4 and {d["status"] for d in log} == {"delivered"} else None

    log = wait_for(all_delivered, "the delivery log to show four delivered")
    assert any(d["attempts"] > 1 for d in log)  # some went through retries
    assert max(d["attempts"] for d in log) <= 4

    first = next(d for d in log if d["event_type"] == "message.first_open")
    r = tracked.api("POST", f"/api/v1/webhooks/deliveries/{first['id']}/replay")
    assert r.status_code == 202 and r.json()["replay_of"] == first["id"]
    got = receiver.wait(5)
    replayed = got[-1]
    assert replayed["type"] == "message.first_open" and replayed["replay_of"] == first["id"]
    assert replayed["id"] == r.json()["id"]
    original = next(p for p in got if p["id"] == first["id"])
    assert replayed["data"] == original["data"]
    assert verify(
        hook["secret"], receiver.received[-1][1], receiver.received[-1][0]["mailbeacon-signature"]
    )
    assert tracked.api("POST", "/api/v1/webhooks/deliveries/999999/replay").status_code == 404


def test_outbox_rows_are_written_with_the_event(tracked: Server) -> None:
    """No webhook, no rows; a webhook created later sees only later events."""
    msg = tracked.message(sent_at=time.time() - 600)
    hit(msg["open_url"], "198.51.100.21", THUNDERBIRD)
    assert rows(tracked.db, "SELECT count(*) FROM outbox") == [(0,)]
    tracked.api(
        "POST",
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/never", "events": ["message.open"]},
    )
    hit(msg["open_url"], "198.51.100.21", THUNDERBIRD)
    got = rows(tracked.db, "SELECT event_type, status FROM outbox")
    assert got == [("message.open", "pending")]  # durable before the GIF was answered
