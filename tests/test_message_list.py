"""Finding a tracked email again: GET /api/v1/messages, `message list|show`.

The traffic is tests/traffic.py's campaign through the app in process (see
tests/test_reports.py for what each message got), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailbeacon.reports.messages import (
    BadQuery,
    decode_cursor,
    encode_cursor,
    link_name,
    place_words,
    summary_words,
)
from tests.helpers import Running, cli
from tests.inprocess import InProcess
from tests.traffic import THUNDERBIRD, build_campaign, hit, labels


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        ({}, "Not opened"),
        ({"scanner": 2}, "Not opened — 2 scanner checks"),
        ({"scanner": 1}, "Not opened — 1 scanner check"),
        ({"machine": 1}, "Not opened — 1 machine prefetch (not a read)"),
        ({"machine": 2, "bot": 1}, "Not opened — 2 machine prefetches (not a read), 1 bot hit"),
        ({"self_hits": 1}, "Not opened — 1 open by you"),
        ({"bounced": True}, "Bounced"),
        ({"human_opens": 3, "place": "iPhone"}, "Opened 3× · iPhone"),
        ({"human_opens": 1, "scanner": 4}, "Opened 1×"),  # machines never in a read's words
        ({"human_clicks": 1, "link": "proposal"}, "Clicked the proposal link"),
        (
            {"human_clicks": 2, "human_opens": 2, "link": "offer", "place": "Outlook"},
            "Clicked the offer link 2× · Opened 2× · Outlook",
        ),
        ({"replies": 1, "human_opens": 1}, "Replied · Opened 1×"),
        ({"auto_replies": 1}, "Not opened — 1 auto-reply"),
    ],
)
def test_summary_in_words(counts: dict[str, Any], words: str) -> None:
    base: dict[str, Any] = {"human_opens": 0, "human_clicks": 0, "replies": 0}
    assert summary_words(**{**base, **counts}) == words


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://acme.example/files/proposal.pdf", "proposal"),
        ("https://acme.example/price-list/", "price list"),
        ("https://acme.example/", "acme.example"),
        ("https://acme.example", "acme.example"),
        ("https://example.com/offer?utm=x", "offer"),
    ],
)
def test_link_names(url: str, name: str) -> None:
    assert link_name(url) == name


def test_places_and_cursor() -> None:
    assert place_words("Apple Mail", "iOS", "mobile") == "iPhone"
    assert place_words(None, "iOS", "tablet") == "iPad"
    assert place_words("Outlook", "Windows", "desktop") == "Outlook"
    assert place_words(None, None, None) is None
    assert decode_cursor(encode_cursor(1764759600.123456, 42)) == (1764759600.123456, 42)
    assert decode_cursor(encode_cursor(None, 7)) == (None, 7)
    for bad in ("", "nope", "W10", encode_cursor(1.0, 1)[:-3] + "!!!"):
        with pytest.raises(BadQuery):
            decode_cursor(bad)


def _page(srv: Running, **params: Any) -> dict[str, Any]:
    r = srv.api("GET", "/api/v1/messages", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _by_recipient(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["recipient"].split("@")[0]: r for r in rows}


def test_find_page_filter_and_sort(tracked_app: InProcess) -> None:
    cid, m = build_campaign(tracked_app)
    lone = tracked_app.message(recipient="quote@client.example", subject="Your quote, v2")
    everything = _page(tracked_app, limit=200)
    assert everything["next_cursor"] is None
    rows = _by_recipient(everything["messages"])
    assert len(rows) == 10
    # Newest activity first (last human hit, else creation), ties by id.
    keys = [(r["last_activity_at"], r["id"]) for r in everything["messages"]]
    assert keys == sorted(keys, reverse=True)
    assert everything["messages"][0]["id"] == lone["id"]  # tracked last, nothing since

    assert rows["h1"]["summary"] == "Opened 3× · Thunderbird"
    assert rows["h1"]["human_opens"] == 3 and rows["h1"]["opened"] is True
    assert rows["h2"]["summary"] == "Clicked the offer link · Opened 2× · Outlook"
    assert rows["a2"]["summary"] == "Clicked the docs link"  # implied open, no human pixel hit
    assert rows["a1"]["summary"] == "Not opened — 1 machine prefetch (not a read)"
    assert rows["s1"]["summary"] == "Not opened — 3 scanner checks"
    assert rows["b1"]["summary"] == "Not opened — 1 bot hit"
    assert rows["quote"]["summary"] == "Not opened" and rows["quote"]["campaign"] is None
    assert rows["h1"]["campaign"] == "launch" and rows["h1"]["campaign_id"] == cid
    for r in rows.values():
        assert set(r) >= {"id", "recipient", "subject", "campaign", "created_at", "sent_at"}
        assert set(r) >= {"last_activity_at", "human_opens", "human_clicks", "replied"}

    def names(**params: Any) -> set[str]:
        return set(_by_recipient(_page(tracked_app, limit=200, **params)["messages"]))

    # Human only: the prefetched a1, scanned s1 and bot b1 are not opened.
    assert names(status="opened") == {"h1", "h2", "g1", "g2", "g3", "a2"}
    assert names(status="not_opened") == {"a1", "s1", "b1", "quote"}
    assert names(status="clicked") == {"h2", "a2"}
    assert names(status="replied") == set()
    assert names(campaign="launch") == names(campaign=str(cid)) == set(rows) - {"quote"}
    assert names(q="H2@EXAMPLE") == {"h2"}  # recipient, any case
    assert names(q="quote, v2") == {"quote"}  # subject
    assert names(q="100%") == set()  # LIKE wildcards are literal
    assert names(q="g3@", status="opened", campaign="launch") == {"g3"}
    assert names(q="b1@", status="opened") == set()

    # Keyset pages: every message once, in the same order as one big page.
    for sort in ("last_activity", "created"):
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = _page(tracked_app, **params)
            seen += [r["id"] for r in page["messages"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == [r["id"] for r in _page(tracked_app, limit=200, sort=sort)["messages"]]
    assert [r["id"] for r in _page(tracked_app, sort="created", limit=2)["messages"]] == [
        lone["id"],
        max(x["id"] for x in m.values()),
    ]

    # A new open puts the message on top.
    hit(m["h1"]["open_url"], "198.51.100.20", THUNDERBIRD)
    labels(tracked_app, m["h1"]["id"])
    top = _page(tracked_app, limit=1)["messages"][0]
    assert top["id"] == m["h1"]["id"] and top["summary"] == "Opened 4× · Thunderbird"

    for bad in ({"status": "read"}, {"sort": "x"}, {"cursor": "zz"}, {"campaign": "nope"}):
        r = tracked_app.api("GET", "/api/v1/messages", params=bad)
        assert r.status_code == 422 and r.json()["error"] == "invalid", (bad, r.text)
    assert tracked_app.api("GET", "/api/v1/messages", params={"limit": 0}).status_code == 422

    # The CLI: the same rows, the summary in words, at 80 columns.
    env = {"COLUMNS": "80"}
    listed = cli(
        "message", "list", "--campaign", "launch", "--limit", "50", db=tracked_app.db, env=env
    )
    assert "Opened 3× · Thunderbird" not in listed.stdout  # h1 has 4 opens now
    assert "Opened 4× ·" in listed.stdout and "Thunderbird" in listed.stdout
    assert "scanner checks" in listed.stdout
    assert all(len(line) <= 80 for line in listed.stdout.splitlines())
    one = cli("message", "list", "--q", "quote@", "--json", db=tracked_app.db)
    assert [r["id"] for r in json.loads(one.stdout)["messages"]] == [lone["id"]]
    shown = cli("message", "show", str(m["h2"]["id"]), db=tracked_app.db, env=env).stdout
    assert "h2@example.org" in shown and "Clicked the offer link" in shown
    assert "https://example.com/offer" in shown
    missing = cli("message", "show", "999999", db=tracked_app.db, check=False)
    assert missing.returncode == 1 and "message list" in missing.stderr
    bad = cli("message", "list", "--status", "read", db=tracked_app.db, check=False)
    assert bad.returncode == 2 and "status must be one of" in bad.stderr
