"""Campaign reports from realistic traffic through the app in process, on SQLite
and PostgreSQL, with exact numbers; plus the pure pieces (z-test, time zones).

The traffic (X-Forwarded-For through --trust-proxy 127.0.0.0/8; the test's
own API calls from 127.0.0.1 are "the sender"):

=======  =======  =============================================  ====================
message  variant  hits                                           counts as
=======  =======  =============================================  ====================
h1       A        3 Thunderbird opens, residential address       opened, 3 human opens
h2       A        2 Outlook opens, then a click on link 1        opened, clicked
g1..g3   B        1 Gmail image proxy open each (one address)    opened (via proxy)
a1       B        Apple MPP prefetch only                        machine, not opened
a2       A        Apple prefetch, then Safari click on link 2    opened (implied), clicked
                  from an Apple relay address
s1       B        scanner clicks links 1, 2 and the honeypot     scanned, not opened
                  a second after sending (sent_at = now)
b1       B        python-requests fetches the pixel              bot, not opened
=======  =======  =============================================  ====================
"""

from __future__ import annotations

import json
import math

import pytest

from mailbeacon.reports import stats, timeline
from tests.helpers import cli
from tests.inprocess import InProcess
from tests.traffic import LINKS, build_campaign, labels, settled_report

# What every label the traffic above must get (checked first, so a classifier
# change shows up as a label mismatch rather than as a wrong report number).
EXPECTED_LABELS = {
    "h1": ["human_direct"] * 3,
    "h2": ["human_direct", "human_direct", "human"],
    "g1": ["human_via_proxy"],
    "a1": ["machine_prefetch"],
    "a2": ["machine_prefetch", "human"],
    "s1": ["scanner"] * 3,
    "b1": ["bot_other"],
}


def test_campaign_report_from_real_traffic(tracked_app: InProcess) -> None:
    cid, m = build_campaign(tracked_app)
    for key, want in EXPECTED_LABELS.items():
        assert [lab for _, lab, _ in labels(tracked_app, m[key]["id"])] == want, key
    rep = settled_report(tracked_app, cid)

    assert rep["messages"] == 9
    assert {
        k: rep["opens"][k]
        for k in (
            "human_unique",
            "human_total",
            "machine_unique",
            "opened_or_auto_unique",
            "scanner_total",
            "bot_total",
            "self_total",
            "open_rate",
            "opened_or_auto_rate",
        )
    } == {
        "human_unique": 6,
        "human_total": 8,
        "machine_unique": 2,
        "opened_or_auto_unique": 7,
        "scanner_total": 0,
        "bot_total": 1,
        "self_total": 0,
        "open_rate": round(6 / 9, 4),
        "opened_or_auto_rate": round(7 / 9, 4),
    }
    assert rep["opens"]["human_via_proxy_total"] == 3 and rep["opens"]["machine_total"] == 2
    assert rep["clicks"] == {
        "human_unique": 2,
        "human_total": 2,
        "scanner_total": 3,
        "bot_total": 0,
        "self_total": 0,
        "unlabelled_total": 0,
        "click_rate": round(2 / 9, 4),
        "click_to_open_rate": round(2 / 6, 4),
    }
    assert rep["scanned_unique"] == 1
    assert rep["links"] == [  # the honeypot (position 0) is not a link
        {"position": 1, "url": LINKS[0], "human_unique": 1, "human_total": 1, "other_total": 1},
        {"position": 2, "url": LINKS[1], "human_unique": 1, "human_total": 1, "other_total": 1},
    ]
    a, b = rep["variants"]
    assert (a["variant"], a["messages"], a["opened"], a["clicked"]) == ("A", 3, 3, 2)
    assert (b["variant"], b["messages"], b["opened"], b["clicked"]) == ("B", 6, 3, 0)
    assert (a["open_rate"], b["open_rate"]) == (1.0, 0.5)
    # pooled 6/9, se = sqrt(2/9 * (1/3 + 1/6)) = 1/3, z = 0.5 / (1/3) = 1.5
    assert a["p_value"] == pytest.approx(math.erfc(1.5 / math.sqrt(2)), abs=1e-6)
    assert a["p_value"] == pytest.approx(0.1336, abs=1e-4)
    assert not a["winner"] and not b["winner"] and a["small_sample"]  # 9 messages prove nothing

    assert sum(h["human_opens"] for h in rep["timeline"]) == 8
    assert sum(d["human_opens"] for d in rep["timeline_daily"]) == 8
    assert sum(map(sum, rep["heatmap"]["human_opens"])) == 8
    assert sum(h["human_clicks"] for h in rep["timeline"]) == 2
    ttfo = {b["bucket"]: b["messages"] for b in rep["time_to_first_open"]}
    assert ttfo["30m-2h"] == 6 and sum(ttfo.values()) == 6
    assert rep["first_open_at"] is not None
    leads = {r["recipient"]: r["why"] for r in rep["warm_leads"]}
    assert leads == {
        "h1@example.org": "opened_repeatedly",
        "h2@example.org": "clicked",
        "a2@example.org": "clicked",
    }
    clients = {c["name"]: c["opens"] for c in rep["clients"]}
    assert clients == {"Thunderbird": 3, "Outlook": 2, "Gmail": 3}

    # Another zone moves the heatmap, not the totals.
    tokyo = settled_report(tracked_app, cid, tz="Asia/Tokyo")
    assert tokyo["heatmap"]["tz"] == "Asia/Tokyo" and tokyo["opens"] == rep["opens"]
    assert sum(map(sum, tokyo["heatmap"]["human_opens"])) == 8
    bad = tracked_app.api("GET", f"/api/v1/campaigns/{cid}/report", params={"tz": "Mars/Base"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid"
    assert tracked_app.api("GET", "/api/v1/campaigns/999999/report").status_code == 404

    # The message view reads the same rollups.
    h2 = tracked_app.api("GET", f"/api/v1/messages/{m['h2']['id']}").json()["summary"]
    assert h2["opened"] and h2["opens_by_label"] == {"human_direct": 2}
    assert h2["clicks_by_label"] == {"human": 1} and h2["first_human_click_at"]
    a1 = tracked_app.api("GET", f"/api/v1/messages/{m['a1']['id']}").json()["summary"]
    assert not a1["opened"] and a1["opened_at"] is None and a1["opens"] == 1

    [camp] = [c for c in tracked_app.api("GET", "/api/v1/campaigns").json() if c["id"] == cid]
    assert (camp["messages"], camp["opened"], camp["clicked"]) == (9, 6, 2)
    assert camp["open_rate"] == round(6 / 9, 4)

    # The CLI prints the same JSON, and a table with the sparkline.
    cli_json = json.loads(cli("report", "launch", "--json", db=tracked_app.db).stdout)
    assert cli_json["opens"] == rep["opens"] and cli_json["links"] == rep["links"]
    text = cli("report", str(cid), "--tz", "Europe/Berlin", db=tracked_app.db).stdout
    assert "beside the rates" in text and "66.7 %" in text and "example.com/offer" in text
    assert any(ch in text for ch in "▁▂▃▄▅▆▇█")

    # Purging raw events leaves the report exactly as it was.
    out = cli("purge", "--older-than", "0h", db=tracked_app.db).stdout
    assert "16 events" in out, out  # 3+3+3+1+2+3+1
    assert tracked_app.events(m["h1"]["id"]) == []
    after = settled_report(tracked_app, cid)
    assert after == rep


FILTERS = {
    "all": {"h1", "h2", "g1", "g2", "g3", "a1", "a2", "s1", "b1"},
    "opened": {"h1", "h2", "g1", "g2", "g3", "a2"},
    "clicked": {"h2", "a2"},
    "not_opened": {"a1", "s1", "b1"},
}


def test_recipient_filters_and_paging(tracked_app: InProcess) -> None:
    cid, _ = build_campaign(tracked_app, "paging")
    settled_report(tracked_app, cid)
    for which, want in FILTERS.items():
        seen: list[str] = []
        for offset in range(0, 12, 2):
            r = tracked_app.api(
                "GET",
                f"/api/v1/campaigns/{cid}/recipients",
                params={"filter": which, "limit": 2, "offset": offset},
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-total-count"] == str(len(want)), which
            page = r.json()
            assert len(page) <= 2
            seen += [row["recipient"].split("@")[0] for row in page]
        assert sorted(seen) == sorted(want), which  # every row once, across pages
    rows = tracked_app.api(
        "GET", f"/api/v1/campaigns/{cid}/recipients", params={"filter": "all", "limit": 100}
    ).json()
    by = {row["recipient"].split("@")[0]: row for row in rows}
    assert all(row["opened"] == (row["opened_at"] is not None) for row in rows)
    assert (by["h1"]["human_opens"], by["h1"]["human_clicks"], by["h1"]["variant"]) == (3, 0, "A")
    assert (by["a2"]["human_opens"], by["a2"]["human_clicks"], by["a2"]["opened"]) == (0, 1, True)
    bad = tracked_app.api("GET", f"/api/v1/campaigns/{cid}/recipients", params={"filter": "x"})
    assert bad.status_code == 422


# --- the pure pieces -----------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "p"),
    [
        (3, 3, 3, 6, 0.133614),  # the scenario above: z = 1.5
        (50, 100, 50, 100, 1.0),  # equal rates
        (0, 10, 0, 10, 1.0),  # both 0 %: undefined, no evidence
        (10, 10, 10, 10, 1.0),
        (120, 400, 80, 400, 0.001091),  # pooled 0.25, se 0.03062, z = 3.266
        (5, 0, 1, 10, 1.0),  # an empty group
    ],
)
def test_two_proportion_z_test(x1: int, n1: int, x2: int, n2: int, p: float) -> None:
    assert stats.two_proportion_p(x1, n1, x2, n2) == pytest.approx(p, abs=1e-5)


def test_winner_only_below_005() -> None:
    from mailbeacon.reports.campaign import variant_rows

    sep = "\x1f"
    rows = {
        f"A{sep}messages": 400,
        f"A{sep}opened": 120,
        f"B{sep}messages": 400,
        f"B{sep}opened": 80,
    }
    a, b = variant_rows(rows)
    assert a["winner"] and not b["winner"] and a["vs"] == "B" and not a["small_sample"]
    rows[f"A{sep}opened"] = 90  # 22.5 % vs 20 %: p ~ 0.39
    a, b = variant_rows(rows)
    assert not a["winner"] and not b["winner"]


@pytest.mark.parametrize(
    ("tz", "utc_hour", "weekday", "local_hour"),
    [
        ("UTC", "2024-01-01T23:00:00+00:00", 0, 23),  # a Monday
        ("Europe/Berlin", "2024-01-01T23:00:00+00:00", 1, 0),  # +1: Tuesday 00h
        ("Europe/Berlin", "2024-07-01T23:00:00+00:00", 1, 1),  # summer time: +2
        ("America/New_York", "2024-01-01T03:00:00+00:00", 6, 22),  # Sunday 22h
        ("Asia/Kolkata", "2024-01-01T20:00:00+00:00", 1, 1),  # +5:30: 01:30 Tuesday
    ],
)
def test_heatmap_shifts_hours_into_the_zone(
    tz: str, utc_hour: str, weekday: int, local_hour: int
) -> None:
    from datetime import datetime

    h = int(datetime.fromisoformat(utc_hour).timestamp() // 3600)
    hours = timeline.hourly({f"{h}:o:h": 4, f"{h}:o:m": 9, f"{h}:c:s": 1})
    assert hours[h] == {
        "human_opens": 4,
        "machine_opens": 9,
        "other_opens": 0,
        "human_clicks": 0,
        "other_clicks": 1,
    }
    grid = timeline.heatmap(hours, timeline.zone(tz))["human_opens"]
    assert grid[weekday][local_hour] == 4 and sum(map(sum, grid)) == 4


def test_unknown_zone_is_a_clear_error() -> None:
    for bad in ("Mars/Base", "", "../etc/passwd", "Europe"):
        with pytest.raises(ValueError, match="IANA"):
            timeline.zone(bad)
