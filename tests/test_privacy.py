"""Data care: per-recipient export, erase and opt-out (API and CLI) through the
app in process (tests/inprocess.py), and through a real `serve` an opt-out
reaching it within its refresh and the retention setting it applies."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, cli, execute, rows, start_server
from tests.inprocess import InProcess
from tests.traffic import THUNDERBIRD, ago, build_campaign, hit, request, settled_report

GIF_LEN = 43


def age_events(db: str, seconds: float) -> None:
    """Move every stored event back in time (as if it had been there that long)."""
    execute(db, "UPDATE events SET at = at - ?", [seconds])


def test_recipient_export_and_erase_keep_campaign_totals(tracked_app: InProcess) -> None:
    cid, m = build_campaign(tracked_app, "erase")
    before = settled_report(tracked_app, cid)
    data = tracked_app.api("GET", "/api/v1/recipients/h1@example.org/export").json()
    assert data["recipient"] == "h1@example.org" and not data["opted_out"]
    [msg] = data["messages"]
    assert msg["id"] == m["h1"]["id"] and len(msg["events"]) == 3
    assert [lk["url"] for lk in msg["links"]] == [
        "https://example.com/offer",
        "https://example.com/docs",
    ]

    r = tracked_app.api("DELETE", "/api/v1/recipients/h1@example.org/erase")
    assert r.status_code == 200 and r.json() == {
        "recipient": "h1@example.org",
        "messages": 1,
        "events": 3,
        "deliveries": 0,
    }
    mid = m["h1"]["id"]
    for table, col in (
        ("messages", "id"),
        ("events", "message_id"),
        ("links", "message_id"),
        ("message_stats", "message_id"),
    ):
        left = rows(tracked_app.db, f"SELECT count(*) FROM {table} WHERE {col} = ?", [mid])
        assert left == [(0,)]
    assert tracked_app.api("GET", f"/api/v1/messages/{mid}").status_code == 404
    export = tracked_app.api("GET", "/api/v1/recipients/h1@example.org/export").json()
    assert export["messages"] == []
    # The anonymous counters stay: totals already reported do not change.
    after = settled_report(tracked_app, cid)
    assert after["opens"] == before["opens"] and after["messages"] == before["messages"]
    assert "h1@example.org" not in {r["recipient"] for r in after["warm_leads"]}
    # A hit on the erased message's pixel still gets the GIF, and nothing is stored.
    r = request(
        "GET",
        m["h1"]["open_url"],
        headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.20"},
    )
    assert r.status_code == 200 and len(r.content) == GIF_LEN
    assert rows(tracked_app.db, "SELECT count(*) FROM events WHERE message_id = ?", [mid]) == [(0,)]

    # The CLI does the same for another person.
    out = cli("recipient", "export", "h2@example.org", db=tracked_app.db).stdout
    assert '"recipient": "h2@example.org"' in out
    out = cli("recipient", "erase", "H2@example.org", db=tracked_app.db).stdout
    assert "1 messages, 3 events" in out


def test_optout_records_nothing_but_still_serves_the_pixel(
    tracked_app: InProcess,
) -> None:
    msg = tracked_app.message(recipient="Quiet@Example.org", sent_at=ago(3600))
    r = tracked_app.api("POST", "/api/v1/recipients/quiet@example.org/optout")
    assert r.status_code == 200 and r.json()["opted_out"] and r.json()["changed"]
    r = request(
        "GET",
        msg["open_url"],
        headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.20"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert len(r.content) == GIF_LEN
    assert r.headers["x-mailbeacon-recorded"] == "no; reason=opted_out"
    assert tracked_app.events(msg["id"]) == []
    assert tracked_app.api("GET", "/api/v1/recipients/quiet@example.org/export").json()["opted_out"]

    r = tracked_app.api("DELETE", "/api/v1/recipients/quiet@example.org/optout")
    assert r.json() == {
        "recipient": "quiet@example.org",
        "opted_out": False,
        "changed": True,
    }
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)  # asserts recorded: yes
    assert len(tracked_app.events(msg["id"])) == 1


def test_cli_optout_reaches_a_running_server_within_the_refresh(
    tracked: Server,
) -> None:
    msg = tracked.message(recipient="later@example.org", sent_at=ago(3600))
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)  # cached by the node now
    assert "opted out" in cli("recipient", "optout", "later@example.org", db=tracked.db).stdout
    deadline = time.monotonic() + 15  # REFRESH_SECONDS is 10
    while time.monotonic() < deadline:
        r = httpx.get(
            msg["open_url"],
            headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.20"},
        )
        assert r.status_code == 200 and len(r.content) == GIF_LEN
        if r.headers["x-mailbeacon-recorded"].startswith("no"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the running server kept recording after the opt-out")
    n = len(tracked.events(msg["id"]))
    httpx.get(msg["open_url"], headers={"X-Forwarded-For": "198.51.100.20"})
    assert len(tracked.events(msg["id"])) == n
    assert (
        "tracked again"
        in cli("recipient", "optout", "later@example.org", "--undo", db=tracked.db).stdout
    )


@pytest.mark.process
def test_serve_applies_retention_days(db_url: str, tmp_path: Path) -> None:
    srv = start_server(db_url, tmp_path)
    try:
        msg = srv.message(sent_at=ago(3600))
        httpx.get(msg["open_url"], headers={"User-Agent": THUNDERBIRD})
        assert len(srv.events(msg["id"])) == 1
        # Age the event by 40 days, then start a node that keeps 30.
        age_events(db_url, 40 * 86400)
    finally:
        srv.stop()
    srv = start_server(db_url, tmp_path, key=srv.key, env={"MAILBEACON_RETENTION_DAYS": "30"})
    try:
        deadline = time.monotonic() + 10
        while srv.events(msg["id"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert srv.events(msg["id"]) == []
        summary = srv.api("GET", f"/api/v1/messages/{msg['id']}").json()["summary"]
        assert summary["opens"] == 1  # the rollups stay
    finally:
        srv.stop()
