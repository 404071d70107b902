"""`mailbeacon demo` fills a campaign with every label, through the real endpoints."""

from __future__ import annotations

import pytest

from tests.helpers import Server, cli, rows


@pytest.mark.process
def test_demo_starts_its_own_server_and_fills_every_label(db_url: str) -> None:
    out = cli("demo", db=db_url, timeout=120).stdout
    assert "Created campaign" in out and "/campaigns/" in out
    cid = int(out.split("Created campaign ")[1].split()[0])
    got = rows(
        db_url,
        "SELECT e.kind, e.label, e.reasons FROM events e JOIN messages m ON m.id = e.message_id "
        "WHERE m.campaign_id = ?",
        (cid,),
    )
    labels = {(k, lab) for k, lab, _ in got}
    for want in [
        ("open", "human_direct"),
        ("open", "human_via_proxy"),
        ("open", "machine_prefetch"),
        ("open", "bot_other"),
        ("open", "self"),
        ("click", "human"),
        ("click", "scanner"),
    ]:
        assert want in labels, (want, sorted(labels))
    reasons = " ".join(r for _, _, r in got)
    assert "self:cookie" in reasons and "self:compose_time" in reasons and "honeypot" in reasons


def test_demo_drives_a_running_server(server: Server) -> None:
    """--url: the server must trust 127.0.0.1 for X-Forwarded-For; this one does not,
    so the demo's scanner is not recognised by network, but every hit is recorded."""
    out = cli("demo", "--url", server.url, db=server.db, timeout=120).stdout
    cid = int(out.split("Created campaign ")[1].split()[0])
    report = server.api("GET", f"/api/v1/campaigns/{cid}/report").json()
    assert report["messages"] == 12 and report["opens"]["human_unique"] >= 5
