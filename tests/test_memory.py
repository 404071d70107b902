"""The node's memory has a real bound, whatever the traffic."""

from __future__ import annotations

import sys
from typing import Any

from mailbeacon.hits import memory as memory_module
from mailbeacon.hits.memory import CLICKS_PER_SOURCE, RECENT_PER_MESSAGE, Memory
from mailbeacon.model import Event, Kind, MessageInfo

# The longest values a request can bring (track.py: 512-character user
# agent, 256 per classifier header), and the longest stored address.
BIG_UA = "Mozilla/5.0 " + "\u00e9" * 500
BIG_HEADERS = {h: "x" * 256 for h in ("accept", "accept-language", "referer", "via", "sec-ch-ua")}


def _hit(mid: int, n: int, kind: Kind = Kind.CLICK, source: str = "") -> Event:
    return Event(
        message_id=mid,
        kind=kind,
        at=1.0e9 + n,
        method="GET",
        ip="2001:db8:ffff:ffff:ffff:ffff:ffff:" + format(n % 65536, "x"),
        user_agent=BIG_UA,
        headers=dict(BIG_HEADERS),
        url="https://example.com/" + "p" * 2000,
        ip_stored="2001:db8:ffff::/48",
        ip_hash=source or format(n, "032x"),
        label="human",
        reasons=["ua:browser", "timing:late"],
        client="Firefox",
        os="Windows",
        device="desktop",
        link_position=n % 5,
    )


def _bytes(e: Event) -> int:
    """What an event holds on to (shared constants such as labels excluded)."""
    total = sys.getsizeof(e) + sys.getsizeof(e.reasons) + sys.getsizeof(e.headers)
    for value in (e.ip, e.ip_stored, e.ip_hash, e.user_agent, e.url, e.at):
        total += sys.getsizeof(value)
    total += sum(sys.getsizeof(v) for v in e.headers.values())
    return total


def test_a_flood_of_messages_and_events_stays_within_the_bound() -> None:
    mem = Memory(max_messages=2_000, max_events=10_000)
    info = MessageInfo(id=0, campaign_id=1, sent_at=None, created_at=0.0)
    n = 0
    for mid in range(5_000):  # 5k messages x 60 events: 300k hits, 30x the bound
        mem.put_message(mid, info)
        batch = []
        for _ in range(RECENT_PER_MESSAGE + 10):
            e = _hit(mid, n)
            e.id = n
            mem.remember(e, info)
            batch.append(e)
            n += 1
        mem.stored(batch)  # the writer committed them
    held = [e for events in mem._recent.values() for e in events]
    assert mem.remembered == len(held) <= 10_000
    assert all(len(events) <= RECENT_PER_MESSAGE for events in mem._recent.values())
    assert len(mem._messages) <= 2_000
    assert len(mem._campaign_clicks) <= memory_module.MAX_CLICK_SOURCES
    # The most recently hit messages are the ones kept, with full histories.
    assert max(mem._recent) == 4_999 and len(mem.history(4_999)) == RECENT_PER_MESSAGE
    # Stored events keep what the rules read and nothing else.
    assert all(e.user_agent == "" and e.headers == {} and e.url is None for e in held)
    per_event = max(_bytes(e) for e in held)
    assert per_event <= 700, per_event  # measured: 652 bytes
    # The documented worst case (hits/memory.py): MAX_EVENTS of them, ~65 MB.
    assert memory_module.MAX_EVENTS * per_event <= 70 * 2**20


def test_one_scanner_clicking_for_every_recipient_is_bounded_per_source() -> None:
    mem = Memory()
    info = MessageInfo(id=0, campaign_id=7, sent_at=None, created_at=0.0)
    for mid in range(10_000):
        mem.remember(_hit(mid, mid, source="scanner"), info)
    seen: Any = mem.campaign_clicks(7, 1.0e9 + 10_000, "scanner")
    assert len(seen["scanner"]) == CLICKS_PER_SOURCE  # the newest ones
    assert max(seen["scanner"]) == 9_999
    assert mem.campaign_clicks(7, 1.0e9 + 10_000, "someone-else") == {}


def test_many_sources_are_bounded_and_stale_ones_expire(monkeypatch: Any) -> None:
    monkeypatch.setattr(memory_module, "MAX_CLICK_SOURCES", 1_000)
    mem = Memory()
    info = MessageInfo(id=0, campaign_id=7, sent_at=None, created_at=0.0)
    for n in range(5_000):
        mem.remember(_hit(n, n), info)
    assert len(mem._campaign_clicks) == 1_000
    newest = format(4_999, "032x")
    assert mem.campaign_clicks(7, 1.0e9 + 5_000, newest) == {newest: {4_999}}
    # An hour later nothing is fresh, and asking drops the stale entry.
    assert mem.campaign_clicks(7, 1.0e9 + 5_000 + 3_601, newest) == {}
    assert len(mem._campaign_clicks) == 999


def test_clearing_keeps_the_count_right() -> None:
    mem = Memory(max_events=100)
    info = MessageInfo(id=0, campaign_id=None, sent_at=None, created_at=0.0)
    for n in range(30):
        mem.remember(_hit(n % 3, n, Kind.OPEN), info)
    assert mem.remembered == 30
    mem.put_message(5, None)
    mem.clear()
    assert mem.remembered == 0
