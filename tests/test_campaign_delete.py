"""Campaigns can be archived (hidden from lists) and deleted (with their
messages, events, rollups, reminders and deliveries), from the API and the
CLI, through a real `serve` on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.helpers import Server, cli, rows
from tests.helpers import cells_containing as traces
from tests.receivers import Receiver
from tests.test_erase import ALL_EVENTS, receiver, srv, wait_delivered  # noqa: F401 - fixtures
from tests.traffic import FIREFOX, THUNDERBIRD, ago, hit

GONE = "doomed-campaign"
KEPT = "kept-campaign"


def _campaign_with_traffic(srv: Server, name: str, who: str, subject: str) -> tuple[int, int]:  # noqa: F811
    cid = srv.api("POST", "/api/v1/campaigns", json={"name": name}).json()["id"]
    msg = srv.message(
        recipient=who,
        subject=subject,
        campaign_id=cid,
        sent_at=ago(600),
        links=["https://example.com/offer"],
    )
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    hit(msg["links"][0]["tracked_url"], "198.51.100.20", FIREFOX)
    r = srv.api(
        "POST",
        "/api/v1/reminders",
        json={"message_id": msg["id"], "if": "not_replied", "after": "3d"},
    )
    assert r.status_code == 201, r.text
    return cid, msg["id"]


def _names(srv: Server, **params: str) -> list[str]:  # noqa: F811
    r = srv.api("GET", "/api/v1/campaigns", params=params)
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()]


@pytest.mark.parametrize("how", ["api", "cli"])
def test_archive_then_delete_leaves_nothing(srv: Server, receiver: Receiver, how: str) -> None:  # noqa: F811
    hook = srv.api("POST", "/api/v1/webhooks", json={"url": receiver.url, "events": ALL_EVENTS})
    assert hook.status_code == 201, hook.text
    cid, mid = _campaign_with_traffic(srv, GONE, "gone.person@example.org", "Doomed subject")
    kept_cid, kept_mid = _campaign_with_traffic(srv, KEPT, "kept@example.org", "Kept subject")
    assert len(wait_delivered(srv, hook.json()["id"], 8)) == 8

    # Archive: gone from lists unless asked for; nothing else changes.
    if how == "api":
        r = srv.api("POST", f"/api/v1/campaigns/{cid}/archive")
        assert r.status_code == 200 and r.json()["archived_at"], r.text
    else:
        out = cli("campaign", "archive", GONE, db=srv.db).stdout
        assert "archived" in out and "unarchive" in out
    assert _names(srv) == [KEPT]
    assert _names(srv, archived="1") == [KEPT, GONE]
    listed = cli("campaign", "list", db=srv.db).stdout
    assert KEPT in listed and GONE not in listed
    assert f"{GONE} (archived)" in cli("campaign", "list", "--archived", db=srv.db).stdout
    assert srv.api("GET", f"/api/v1/campaigns/{cid}/report").status_code == 200
    if how == "api":
        assert srv.api("POST", f"/api/v1/campaigns/{cid}/unarchive").json()["archived_at"] is None
    else:
        cli("campaign", "unarchive", str(cid), db=srv.db)
    assert _names(srv) == [KEPT, GONE]

    # Delete: the campaign and everything about its messages.
    if how == "api":
        r = srv.api("DELETE", f"/api/v1/campaigns/{cid}")
        assert r.status_code == 200, r.text
        assert r.json()["deleted"] == {"messages": 1, "events": 2, "deliveries": 4}
        assert srv.api("DELETE", f"/api/v1/campaigns/{cid}").status_code == 404
    else:
        refused = cli("campaign", "delete", str(cid), db=srv.db, check=False)
        assert refused.returncode == 1 and "--yes" in refused.stderr
        assert GONE in _names(srv)
        out = cli("campaign", "delete", str(cid), "--yes", db=srv.db).stdout
        assert "1 messages, 2 events, 4 deliveries" in out
        missing = cli("campaign", "delete", str(cid), "--yes", db=srv.db, check=False)
        assert missing.returncode == 1 and "campaign list" in missing.stderr
    assert _names(srv, archived="1") == [KEPT]
    assert traces(srv.db, "gone.person@example.org", "Doomed subject") == []
    assert rows(srv.db, "SELECT count(*) FROM counters WHERE campaign_id = ?", (cid,)) == [(0,)]
    for table, col in (("events", "message_id"), ("reminders", "message_id")):
        assert rows(srv.db, f"SELECT count(*) FROM {table} WHERE {col} = ?", (mid,)) == [(0,)]
    assert srv.api("GET", f"/api/v1/messages/{mid}").status_code == 404
    # The other campaign is whole.
    assert srv.api("GET", f"/api/v1/messages/{kept_mid}").json()["summary"]["opens"] == 1
    report = srv.api("GET", f"/api/v1/campaigns/{kept_cid}/report").json()
    assert report["messages"] == 1
    assert rows(srv.db, "SELECT count(*) FROM reminders WHERE message_id = ?", (kept_mid,)) == [
        (1,)
    ]
