"""Realistic traffic for end-to-end tests: user agents, addresses, and helpers
that send a hit the way a mail client, proxy or scanner would.

The test server trusts 127.0.0.0/8 as its reverse proxy, so each hit can carry
the address a real client would have (X-Forwarded-For). The test's own API
calls come from 127.0.0.1: that is "the sender".
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers import Server

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


def hit(url: str, ip: str, ua: str, method: str = "GET") -> httpx.Response:
    r = httpx.request(
        method, url, headers={"User-Agent": ua, "X-Forwarded-For": ip}, follow_redirects=False
    )
    assert r.headers["x-mailbeacon-recorded"] == "yes", r.headers
    return r


def labels(srv: Server, message_id: int, settle: float = 3.0) -> list[tuple[str, str, list[str]]]:
    """(kind, label, reasons) of a message's events, after late evidence settled."""
    deadline = time.monotonic() + settle
    while True:
        events = srv.events(message_id)
        if time.monotonic() > deadline or all(e["label"] for e in events):
            return [(e["kind"], e["label"], e["reasons"]) for e in events]
        time.sleep(0.1)


def ago(seconds: float) -> float:
    return time.time() - seconds
