"""Receivers that misbehave cannot hurt the others or the server: one that
drips its answer and one that never answers, beside a normal one, do not
delay it; an answer that is a gzip bomb is never inflated. Real `serve`
processes, both stores."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, start_server
from tests.receivers import BadReceiver, Receiver
from tests.traffic import THUNDERBIRD, ago, hit

HOOK_ENV = {"MAILBEACON_WEBHOOK_ALLOW_INTERNAL": "1", "MAILBEACON_WEBHOOK_BACKOFF_BASE": "0.2"}


@pytest.fixture
def srv(db_url: str, tmp_path: Path) -> Iterator[Server]:
    s = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"], env=HOOK_ENV)
    try:
        yield s
    finally:
        s.stop()


def hook(srv: Server, url: str) -> int:
    r = srv.api("POST", "/api/v1/webhooks", json={"url": url, "events": ["message.open"]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_slow_receivers_do_not_delay_a_normal_one(srv: Server) -> None:
    drip, silent, normal = BadReceiver("drip"), BadReceiver("silent"), Receiver()
    try:
        # The bad ones first: their deliveries come first in every claim.
        for url in (drip.url, silent.url, normal.url):
            hook(srv, url)
        n = 20
        sent = {}
        for i in range(n):
            msg = srv.message(recipient=f"r{i}@example.org", sent_at=ago(3600))
            hit(msg["open_url"], f"198.51.100.{i + 1}", THUNDERBIRD)
            sent[msg["id"]] = time.monotonic()
        got = normal.wait(n, timeout=60)
        assert len(got) == n, f"the normal receiver got {len(got)} of {n}"
        late = [
            at - sent[p["data"]["message"]["id"]] for p, at in zip(got, normal.times, strict=True)
        ]
        # 1 s hold for late relabelling + 0.5 s poll; a slow receiver's 15 s
        # deadline must not show up here.
        print(
            f"normal receiver beside drip+silent: median {statistics.median(late):.2f} s, "
            f"max {max(late):.2f} s over {n} deliveries"
        )
        assert max(late) < 8, late
        assert drip.connections >= 1 and silent.connections >= 1  # they were tried
    finally:
        for r in (drip, silent):
            r.close()
        normal.close()


def test_a_gzip_bomb_answer_is_never_inflated(srv: Server) -> None:
    bomb = BadReceiver("bomb", inflated=256 * 2**20)  # 256 MB of zeros in ~250 KB
    try:
        hid = hook(srv, bomb.url)
        before = peak_rss_kb(srv.proc.pid)
        msg = srv.message(sent_at=ago(3600))
        hit(msg["open_url"], "198.51.100.9", THUNDERBIRD)
        deadline = time.monotonic() + 30
        while bomb.connections < 3:  # the first try and two retries (base 0.2 s)
            assert time.monotonic() < deadline, f"{bomb.connections} tries"
            time.sleep(0.1)
        [d] = srv.api("GET", f"/api/v1/webhooks/{hid}/deliveries").json()
        after = peak_rss_kb(srv.proc.pid)
        print(f"peak RSS {before / 1024:.0f} -> {after / 1024:.0f} MB with three 256 MB bombs")
        assert after - before < 48 * 1024, (before, after)
        assert d["status"] == "pending" and d["attempts"] >= 2
        assert d["last_status"] in (None, 500)
        assert len(d["last_error"] or "") <= 500
    finally:
        bomb.close()
