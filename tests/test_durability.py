"""No acknowledged hit is ever lost: SIGKILL under load, store outages, full queues."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, outage, recorded, rows, start_server

pytestmark = pytest.mark.process  # every test starts `serve` and stops its store or kills it

# Acknowledged hits to collect before the kill: enough that several group
# commits are in flight when it lands, on any machine however loaded.
ACKED_BEFORE_KILL = 300


async def _load_until_killed(srv: Server, urls: list[str], concurrency: int = 32) -> set[str]:
    """Hit ``urls`` round-robin; SIGKILL the server once ACKED_BEFORE_KILL hits
    were acknowledged, while the load goes on; return the UAs acknowledged."""
    acked: set[str] = set()
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker(w: int) -> None:
            n = 0
            while True:
                n += 1
                ua = f"load/{w}/{n}"
                try:
                    r = await client.get(urls[n % len(urls)], headers={"User-Agent": ua})
                except httpx.HTTPError:
                    return  # the server died under us: expected after the kill
                if r.status_code in (200, 302) and recorded(r) == "yes":
                    acked.add(ua)

        workers = [asyncio.create_task(worker(w)) for w in range(concurrency)]
        # Count work, not seconds: a loaded machine only takes longer.
        deadline = time.monotonic() + 300
        while len(acked) < ACKED_BEFORE_KILL:
            assert time.monotonic() < deadline, f"only {len(acked)} hits acknowledged in 300 s"
            assert not any(w.done() for w in workers), srv.output()[-2000:]
            await asyncio.sleep(0.05)
        srv.proc.kill()  # SIGKILL mid-load: no shutdown hook runs
        await asyncio.gather(*workers)
    return acked


def test_sigkill_mid_load_loses_no_acknowledged_hit(server: Server) -> None:
    msg = server.message(links=["https://example.com/a", "https://example.com/b"])
    urls = [msg["open_url"], msg["links"][0]["tracked_url"], msg["links"][1]["tracked_url"]]
    acked = asyncio.run(_load_until_killed(server, urls))
    assert len(acked) >= ACKED_BEFORE_KILL
    server.restart()
    stored = {ua for (ua,) in rows(server.db, "SELECT user_agent FROM events")}
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged hits lost, e.g. {sorted(missing)[:5]}"


def _wait_health(srv: Server, want: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{srv.url}/healthz", timeout=2).json()["store"] == want:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"store never became {want}:\n{srv.output()[-2000:]}")


def test_store_down_links_still_work_and_recording_resumes(db_url: str, tmp_path: Path) -> None:
    srv = start_server(db_url, tmp_path, env={"MAILBEACON_COMMIT_TIMEOUT": "0.5"})
    try:
        msg = srv.message(links=["https://example.com/a"])
        assert recorded(httpx.get(msg["open_url"])) == "yes"
        with outage(db_url):
            r = httpx.get(msg["open_url"], headers={"User-Agent": "during-outage/1"}, timeout=10)
            assert r.status_code == 200 and recorded(r) == "no"  # timed out or failed
            _wait_health(srv, "down")
            # A known outage is answered at once: store_down, not commit_timeout.
            r = httpx.get(msg["open_url"], headers={"User-Agent": "during-outage/2"})
            assert r.status_code == 200 and len(r.content) == 43
            assert r.headers["x-mailbeacon-recorded"] == "no; reason=store_down"
            c = httpx.get(msg["links"][0]["tracked_url"], headers={"User-Agent": "during-outage/3"})
            assert c.status_code == 302 and c.headers["location"] == "https://example.com/a"
            assert c.headers["x-mailbeacon-recorded"] == "no; reason=store_down"
        _wait_health(srv, "up")
        assert recorded(httpx.get(msg["open_url"], headers={"User-Agent": "after"})) == "yes"
        uas = [e["user_agent"] for e in srv.events(msg["id"])]
        # Unacknowledged hits were kept in memory and written once the store came back.
        for ua in ("during-outage/1", "during-outage/2", "during-outage/3", "after"):
            assert ua in uas
        text = httpx.get(f"{srv.url}/metrics").text
        assert 'mailbeacon_unrecorded_hits_total{reason="store_down"}' in text
        assert "store write failed" in srv.output()
        assert "recording resumed" in srv.output()
    finally:
        srv.stop()


def test_the_api_says_503_while_the_store_is_down(db_url: str, tmp_path: Path) -> None:
    """A write the store cannot take is 503 with Retry-After and the API's
    JSON error, not a bare 500; it works again once the store is back."""
    srv = start_server(db_url, tmp_path)
    try:
        new = {"recipient": "ana@example.com"}
        with srv.client() as api:
            assert api.post("/api/v1/messages", json=new).status_code == 201
            with outage(db_url):  # SQLite: the write waits out the 5 s busy timeout
                r = api.post("/api/v1/messages", json=new, timeout=30)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.json()["error"] == "store_unavailable"
            assert "try again" in r.json()["message"] and "Error" not in r.text
            assert api.post("/api/v1/messages", json=new).status_code == 201
        assert "the store failed" in srv.output()
    finally:
        srv.stop()


def test_full_queue_still_answers_and_counts(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(sqlite_url, tmp_path, env={"MAILBEACON_QUEUE_MAX": "0"})
    try:
        msg = srv.message(links=["https://example.com/a"])
        r = httpx.get(msg["open_url"])
        c = httpx.get(msg["links"][0]["tracked_url"])
        assert (r.status_code, c.status_code) == (200, 302)
        for answer in (r, c):
            assert answer.headers["x-mailbeacon-recorded"] == "no; reason=queue_full"
        text = httpx.get(f"{srv.url}/metrics").text
        assert 'mailbeacon_unrecorded_hits_total{reason="queue_full"} 2.0' in text
        assert srv.events(msg["id"]) == []
    finally:
        srv.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_nodes_share_one_postgresql(db_url: str, tmp_path: Path) -> None:
    a = start_server(db_url, tmp_path)
    b = start_server(db_url, tmp_path, key=a.key)
    try:
        msg = a.message(links=["https://example.com/a"])
        # Tokens are stateless: node B verifies and redirects links node A made.
        token_path = msg["open_url"].split("/o/", 1)[1]
        click_path = msg["links"][0]["tracked_url"].split("/c/", 1)[1]
        for node, ua in ((a, "via-a"), (b, "via-b")):
            r = httpx.get(f"{node.url}/o/{token_path}", headers={"User-Agent": ua})
            assert recorded(r) == "yes"
        assert httpx.get(f"{b.url}/c/{click_path}").status_code == 302
        seen = {e["user_agent"] for e in a.events(msg["id"])}
        assert {"via-a", "via-b"} <= seen and len(a.events(msg["id"])) == 3
        assert len(b.events(msg["id"])) == 3
    finally:
        a.stop()
        b.stop()
