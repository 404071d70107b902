"""Realistic traffic for end-to-end tests: user agents, addresses, and helpers
that send a hit the way a mail client, proxy or scanner would.

The test server trusts 127.0.0.0/8 as its reverse proxy, so each hit can carry
the address a real client would have (X-Forwarded-For). The test's own API
calls come from 127.0.0.1: that is "the sender".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import Running

DATA = Path(__file__).parent / "data" / "networks"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"


# Apps running in this process (tests/inprocess.py), by base URL: requests to
# them go through their TestClient; any other URL is a real server's.
IN_PROCESS: dict[str, httpx.Client] = {}


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    for base, client in IN_PROCESS.items():
        if url.startswith(base + "/"):
            kw.pop("timeout", None)  # nothing to wait for in process (TestClient warns)
            return client.request(method, url, **kw)
    return httpx.request(method, url, **kw)


def hit(url: str, ip: str, ua: str, method: str = "GET") -> httpx.Response:
    r = request(
        method, url, headers={"User-Agent": ua, "X-Forwarded-For": ip}, follow_redirects=False
    )
    assert r.headers["x-mailbeacon-recorded"] == "yes", r.headers
    return r


def labels(srv: Running, message_id: int, settle: float = 3.0) -> list[tuple[str, str, list[str]]]:
    """(kind, label, reasons) of a message's events, after late evidence settled."""
    deadline = time.monotonic() + settle
    while True:
        events = srv.events(message_id)
        if time.monotonic() > deadline or all(e["label"] for e in events):
            return [(e["kind"], e["label"], e["reasons"]) for e in events]
        time.sleep(0.1)


def labels_when(
    srv: Running,
    message_id: int,
    done: Callable[[list[str]], bool],
    timeout: float = 20.0,
) -> list[tuple[str, str, list[str]]]:
    """The message's events once ``done(labels)`` holds, or as they are at the
    deadline (the caller's assert then shows them): late evidence relabels
    after the commit, sooner or later depending on the machine's load."""
    deadline = time.monotonic() + timeout
    while True:
        got = labels(srv, message_id)
        if done([lab for _, lab, _ in got]) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def ago(seconds: float) -> float:
    return time.time() - seconds


OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
LINKS = ["https://example.com/offer", "https://example.com/docs"]


def settled_report(srv: Running, cid: int, **params: Any) -> dict[str, Any]:
    """The report once late relabelling has stopped moving it (two equal reads)."""
    last: Any = None
    deadline = time.monotonic() + 10
    while True:
        r = srv.api("GET", f"/api/v1/campaigns/{cid}/report", params=params)
        assert r.status_code == 200, r.text
        if r.json() == last or time.monotonic() > deadline:
            return dict(r.json())
        last = r.json()
        time.sleep(0.4)


def build_campaign(srv: Running, name: str = "launch") -> tuple[int, dict[str, dict[str, Any]]]:
    cid = srv.api("POST", "/api/v1/campaigns", json={"name": name}).json()["id"]

    def msg(key: str, variant: str, sent: float, **kw: Any) -> dict[str, Any]:
        return srv.message(
            recipient=f"{key}@example.org",
            campaign_id=cid,
            variant=variant,
            sent_at=sent,
            links=LINKS,
            **kw,
        )

    m = {
        "h1": msg("h1", "A", ago(3600)),
        "h2": msg("h2", "A", ago(3600)),
        **{g: msg(g, "B", ago(3600)) for g in ("g1", "g2", "g3")},
        "a1": msg("a1", "B", ago(3600)),
        "a2": msg("a2", "A", ago(3600)),
        "s1": msg("s1", "B", ago(0), honeypot=True),
        "b1": msg("b1", "B", ago(3600)),
    }
    for _ in range(3):
        hit(m["h1"]["open_url"], "198.51.100.20", THUNDERBIRD)
    for _ in range(2):
        hit(m["h2"]["open_url"], "203.0.113.50", OUTLOOK)
    hit(m["h2"]["links"][0]["tracked_url"], "203.0.113.50", FIREFOX)
    for g in ("g1", "g2", "g3"):
        hit(m[g]["open_url"], "66.249.84.222", GMAIL_PROXY)
    hit(m["a1"]["open_url"], "172.224.226.5", "Mozilla/5.0")
    hit(m["a2"]["open_url"], "172.224.226.5", "Mozilla/5.0")
    hit(m["a2"]["links"][1]["tracked_url"], "172.224.226.6", SAFARI)
    time.sleep(1.0)  # "a second after sending"
    for link in m["s1"]["links"]:  # links 1, 2 and the honeypot (position 0)
        hit(link["tracked_url"], "40.107.218.12", CHROME)
    hit(m["b1"]["open_url"], "198.51.100.77", "python-requests/2.32.3")
    for one in m.values():
        labels(srv, one["id"])
    return cid, m
