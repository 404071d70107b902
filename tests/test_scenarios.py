"""Classification end to end: realistic traffic through the app, in process
(tests/inprocess.py: built and run as `serve` runs it).

The app trusts 127.0.0.0/8 as its reverse proxy, so each hit can carry the
address a real mail client, proxy or scanner would have (X-Forwarded-For).
The test's own API calls come from 127.0.0.1: that is "the sender".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from time_machine import Traveller

from tests.helpers import cli
from tests.inprocess import InProcess, in_process
from tests.traffic import (
    CHROME,
    FIREFOX,
    GMAIL_PROXY,
    THUNDERBIRD,
    ago,
    hit,
    labels,
    labels_when,
    request,
    settled_report,
)


def test_scanner_clicking_every_link_a_second_after_sending(tracked_app: InProcess) -> None:
    msg = tracked_app.message(sent_at=ago(1), links=[f"https://example.com/{p}" for p in "abc"])
    for link in msg["links"]:
        hit(link["tracked_url"], "40.107.218.12", CHROME)
    # The writer relabels right after the commit: wait for it, not a fixed time.
    got = labels_when(tracked_app, msg["id"], lambda labs: labs == ["scanner"] * 3)
    assert [lab for _, lab, _ in got] == ["scanner"] * 3, got


def test_apple_prefetch_then_gmail_proxy_open_an_hour_later(tracked_app: InProcess) -> None:
    msg = tracked_app.message(sent_at=ago(3600))
    hit(msg["open_url"], "172.224.226.5", "Mozilla/5.0")  # MPP fetch at delivery
    hit(msg["open_url"], "66.249.84.222", GMAIL_PROXY)  # the reader opens in Gmail
    (k1, l1, r1), (k2, l2, r2) = labels(tracked_app, msg["id"])
    assert (k1, l1) == ("open", "machine_prefetch") and "ip:apple_egress" in r1
    assert (k2, l2) == ("open", "human_via_proxy") and "ua:gmail_image_proxy" in r2
    events = tracked_app.events(msg["id"])
    assert events[1]["client"] == "Gmail"


def test_human_open_then_human_click(tracked_app: InProcess, clock: Traveller) -> None:
    msg = tracked_app.message(sent_at=ago(600), links=["https://example.com/offer"])
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    clock.shift(1.5)
    hit(msg["links"][0]["tracked_url"], "198.51.100.20", FIREFOX)
    got = labels(tracked_app, msg["id"])
    assert [(k, lab) for k, lab, _ in got] == [("open", "human_direct"), ("click", "human")]
    assert tracked_app.events(msg["id"])[0]["client"] == "Thunderbird"


def test_honeypot_hit_relabels_the_clicks_around_it(
    tracked_app: InProcess, clock: Traveller
) -> None:
    msg = tracked_app.message(
        sent_at=ago(7200), honeypot=True, links=["https://example.com/a", "https://example.com/b"]
    )
    hp = msg["honeypot_position"]
    assert hp == 0 and msg["links"][-1]["position"] == hp  # reserved: real links count from 1
    hit(msg["links"][0]["tracked_url"], "203.0.113.77", CHROME)
    clock.shift(0.3)
    first = labels(tracked_app, msg["id"])
    assert first[0][1] == "human"  # nothing suspicious yet
    hit(msg["links"][-1]["tracked_url"], "203.0.113.77", CHROME)  # the invisible link
    got = labels_when(tracked_app, msg["id"], lambda labs: labs == ["scanner", "scanner"])
    assert [lab for _, lab, _ in got] == ["scanner", "scanner"], got
    assert "honeypot" in got[1][2] and any(r.startswith("honeypot") for r in got[0][2])


def test_gmail_readers_behind_one_proxy_address_are_all_human(tracked_app: InProcess) -> None:
    camp = tracked_app.api("POST", "/api/v1/campaigns", json={"name": "newsletter"}).json()
    msgs = [
        tracked_app.message(recipient=f"r{i}@gmail.com", campaign_id=camp["id"], sent_at=ago(900))
        for i in range(5)
    ]
    for m in msgs:
        hit(m["open_url"], "66.249.84.222", GMAIL_PROXY)
    for m in msgs:
        assert [lab for _, lab, _ in labels(tracked_app, m["id"])] == ["human_via_proxy"]


def test_sender_views_are_self(tracked_app: InProcess) -> None:
    composing = tracked_app.message()  # no sent_at: the sender is still composing
    # The compose window renders the pasted pixel through Gmail's proxy: the
    # first fetch after creation, through the client the sender writes in.
    hit(composing["open_url"], "66.249.84.9", GMAIL_PROXY)
    # Issue 12 item 4: a later hit from another network and client is the
    # recipient's, not the sender's, even without sent_at.
    hit(composing["open_url"], "198.51.100.99", CHROME)
    [(_, lab, reasons), (_, other, _)] = labels(tracked_app, composing["id"])
    assert lab == "self" and "self:compose_time" in reasons
    assert other == "human_direct"
    sent = tracked_app.message(sent_at=ago(3600))
    r = request("GET", sent["open_url"], headers={"User-Agent": CHROME})  # from the API's address
    assert r.headers["x-mailbeacon-recorded"] == "yes"
    [(_, lab, reasons)] = labels(tracked_app, sent["id"])
    assert lab == "self" and "self:sender_ip" in reasons


def test_head_and_library_hits_are_never_human(tracked_app: InProcess) -> None:
    msg = tracked_app.message(sent_at=ago(3600), links=["https://example.com/a"])
    hit(msg["open_url"], "198.51.100.5", "python-requests/2.32.3")
    hit(msg["links"][0]["tracked_url"], "198.51.100.6", CHROME, method="HEAD")
    got = labels(tracked_app, msg["id"])
    assert got[0][1] == "bot_other" and got[1][1] in ("bot", "scanner")
    assert "method:head" in got[1][2]


def test_reclassify_after_a_new_network_list(tracked_app: InProcess, tmp_path: Path) -> None:
    msg = tracked_app.message(sent_at=ago(3600), links=["https://example.com/a"])
    hit(msg["links"][0]["tracked_url"], "192.0.2.50", CHROME)
    assert labels(tracked_app, msg["id"])[0][1] == "human"
    lst = tmp_path / "gateway.txt"
    lst.write_text("# our customer's mail gateway\n192.0.2.0/24\n")
    out = cli("networks", "load", "gateway", str(lst), "--scope", "all", db=tracked_app.db).stdout
    assert "1 ranges loaded" in out
    assert "gateway" in cli("networks", "list", db=tracked_app.db).stdout
    out = cli("reclassify", db=tracked_app.db).stdout
    assert "1 labels changed" in out, out
    [(_, lab, reasons)] = labels(tracked_app, msg["id"])
    assert lab == "scanner" and any("gateway" in r for r in reasons), reasons


def test_labelling_off_records_unlabelled_then_reclassify_labels(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBEACON_CLASSIFY", "false")
    with in_process(sqlite_url, trust_proxy=("127.0.0.0/8",)) as srv:
        msg = srv.message(sent_at=ago(600))
        hit(msg["open_url"], "66.249.84.222", GMAIL_PROXY)
        [event] = srv.events(msg["id"])
        assert event["label"] is None and event["reasons"] == []
        assert "1 labels changed" in cli("reclassify", db=sqlite_url).stdout
        [(_, lab, reasons)] = labels(srv, msg["id"])
        assert lab == "human_via_proxy" and "ua:gmail_image_proxy" in reasons


def test_one_address_clicking_for_three_recipients_relabels_all_of_them(
    tracked_app: InProcess,
) -> None:
    """Issue 12 item 2: a gateway address outside every list clicks each
    recipient's copy; once the third shows the pattern, the first two are
    relabelled too, and the campaign's counts move with them."""
    camp = tracked_app.api("POST", "/api/v1/campaigns", json={"name": "b2b outreach"}).json()
    msgs = [
        tracked_app.message(
            recipient=f"r{i}@corp.example",
            campaign_id=camp["id"],
            sent_at=ago(3600),
            links=["https://example.com/offer"],
        )
        for i in range(3)
    ]
    hit(msgs[0]["links"][0]["tracked_url"], "203.0.113.200", CHROME)
    assert labels(tracked_app, msgs[0]["id"])[0][1] == "human"  # nothing to see yet
    for m in msgs[1:]:
        hit(m["links"][0]["tracked_url"], "203.0.113.200", CHROME)
    report = settled_report(tracked_app, camp["id"])
    got = [labels(tracked_app, m["id"])[0] for m in msgs]
    assert [lab for _, lab, _ in got] == ["scanner"] * 3, got
    assert all(reasons[0].startswith("campaign:") for _, _, reasons in got), got
    assert (report["clicks"]["human_total"], report["clicks"]["scanner_total"]) == (0, 3)
    assert report["clicks"]["human_unique"] == 0
