"""Webhooks reach public addresses only: every spelling of an internal
address is refused when the webhook is created (422, saying why), names that
resolve there too, and a delivery connects only to the address it checked
(so a name that resolves elsewhere the second time reaches nothing).
``webhook_allow_internal`` lets them through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from mailbeacon import config
from mailbeacon.notify import egress
from mailbeacon.notify.worker import Worker
from mailbeacon.store import keys, make_engine, upgrade
from mailbeacon.store import outbox as ns
from mailbeacon.store.schema import outbox
from tests.receivers import Receiver

INTERNAL = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://LOCALHOST/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # decimal
    ("http://0x7f000001/hook", "loopback"),  # hex
    ("http://0x7f.1/hook", "loopback"),  # hex, short
    ("http://0177.0.0.1/hook", "loopback"),  # octal
    ("http://017700000001/hook", "loopback"),  # octal, one number
    ("http://127.1/hook", "loopback"),  # short form
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:7f00:1]/hook", "loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/hook", "loopback"),
    ("http://[64:ff9b::7f00:1]/hook", "loopback"),  # NAT64
    ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # AWS, GCP, Azure metadata
    ("http://[fd00:ec2::254]/latest/meta-data/", "private"),  # AWS metadata over IPv6
    ("http://0xa9fea9fe/latest/meta-data/", "link-local"),  # the same, in hex
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://100.64.0.1/hook", "CGNAT"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://255.255.255.255/hook", "reserved"),
    ("https://user:pw@127.0.0.1:8443/hook", "loopback"),
]
PUBLIC = ["https://93.184.215.14/hook", "https://[2606:4700::1111]/hook", "https://e.com/h"]


def fake_dns(answers: dict[str, list[str]]) -> Any:
    real = egress.resolve_host

    def resolve(host: str, port: int) -> list[str]:
        return answers[host] if host in answers else real(host, port)

    return resolve


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = config.load(db=db_url, base_url="https://t.example.com")
    yield from _client(settings)


def _client(settings: config.Settings) -> Iterator[TestClient]:
    from mailbeacon.web.app import build

    engine = make_engine(settings.database_url)
    upgrade(engine)
    _, secret = keys.create_api_key(engine, "test")
    with TestClient(build(settings)) as c:
        c.headers["Authorization"] = f"Bearer {secret}"
        yield c
    engine.dispose()


def create(c: TestClient, url: str) -> Any:
    return c.post("/api/v1/webhooks", json={"url": url, "events": ["message.open"]})


@pytest.mark.parametrize(("url", "what"), INTERNAL)
def test_every_spelling_of_an_internal_address_is_refused(
    client: TestClient, url: str, what: str
) -> None:
    r = create(client, url)
    assert r.status_code == 422, r.text
    msg = r.json()["message"]
    assert what in msg and "webhook_allow_internal" in msg, msg


def test_names_that_resolve_inside_are_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        egress,
        "resolve_host",
        fake_dns({"hooks.corp.example": ["10.1.2.3"], "mixed.example": ["93.184.215.14", "::1"]}),
    )
    refused = {"http://hooks.corp.example/h": "private", "https://mixed.example/h": "loopback"}
    for url, what in refused.items():
        r = create(client, url)
        assert r.status_code == 422 and what in r.json()["message"], r.text
    for url in PUBLIC:  # an unresolvable name is accepted: delivery checks again
        assert create(client, url).status_code == 201, url


def test_the_policy_alone() -> None:
    """The API and the dashboard form both call check_url (via check_webhook)."""
    with pytest.raises(egress.Refused):
        egress.check_url("http://0x7f.1/", allow_internal=False)
    egress.check_url("http://0x7f.1/", allow_internal=True)
    with pytest.raises(egress.Refused, match="http"):
        egress.check_url("ftp://example.com/", allow_internal=True)


def test_allow_internal_lets_them_through(db_url: str) -> None:
    settings = config.load(db=db_url, base_url="https://t.example.com", webhook_allow_internal=True)
    for c in _client(settings):
        for url, _ in INTERNAL[:12]:
            assert create(c, url).status_code == 201, url


def deliver_once(
    db_url: str,
    url: str,
    *,
    allow_internal: bool,
    dns: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """One outbox row to a webhook made without the creation check (as if DNS
    had said "public" then), delivered by a real Worker; the row afterwards."""
    monkeypatch.setattr(egress, "resolve_host", fake_dns(dns))
    settings = config.load(db=db_url, webhook_allow_internal=allow_internal)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    hook = ns.create_webhook(engine, url, ["message.open"])
    with engine.begin() as conn:
        did = conn.execute(
            insert(outbox)
            .values(
                channel="webhook",
                webhook_id=hook["id"],
                event_type="message.open",
                event_id=1,
                message_id=1,
                created_at=time.time(),
                next_at=0,
                attempts=0,
                status="pending",
                payload='{"id":1}',
            )
            .returning(outbox.c.id)
        ).scalar_one()

    async def run() -> None:
        worker = Worker(engine, settings, "https://t.example.com")
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    row = conn.execute(select(outbox).where(outbox.c.id == did)).one()
                if row.last_error or row.status != "pending":
                    return
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()

    asyncio.run(run())
    with engine.connect() as conn:
        out = dict(conn.execute(select(outbox).where(outbox.c.id == did)).one()._mapping)
    engine.dispose()
    return out


def test_delivery_connects_only_to_the_address_it_checked(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Receiver()
    try:
        port = rec.httpd.server_port
        url = f"http://rebind.example:{port}/hook"
        # DNS now says 127.0.0.1 (rebinding after a public answer at creation).
        row = deliver_once(
            db_url,
            url,
            allow_internal=False,
            dns={"rebind.example": ["127.0.0.1"]},
            monkeypatch=monkeypatch,
        )
        assert row["status"] == "pending" and "loopback" in row["last_error"], row
        assert rec.calls == 0  # nothing reached the internal receiver
        # Allowed: it connects to the address it resolved, with the name as Host.
        row = deliver_once(
            db_url,
            url,
            allow_internal=True,
            dns={"rebind.example": ["127.0.0.1"]},
            monkeypatch=monkeypatch,
        )
        assert row["status"] == "delivered", row
        [(headers, _)] = rec.received
        assert headers["host"] == f"rebind.example:{port}"
        assert headers["accept-encoding"] == "identity"
    finally:
        rec.close()
