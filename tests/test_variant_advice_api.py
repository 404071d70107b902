"""The campaign report's words (API, SQLite and PostgreSQL): each variant's
subject and verdict, the campaign's A/B sentence, and send-time advice from
first human opens, in the zone asked for.

In process; human opens are handed to the node's recorder already labelled,
at chosen times (the test client's own hits would be "self")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailbeacon.model import Event, Kind


def _open(api: Any, message_id: int, at: str) -> None:
    event = Event(
        message_id=message_id, kind=Kind.OPEN, at=datetime.fromisoformat(at).timestamp(),
        method="GET", ip="198.51.100.7", user_agent="Thunderbird/115.0", label="human_direct",
        reasons=["ua:mail_client"], client="Thunderbird",
    )  # fmt: skip
    assert api.portal.call(api.app.fallback.state.node.recorder.add, event)


def test_report_says_the_verdict_and_when_people_open(api: Any) -> None:
    cid = api.post("/api/v1/campaigns", json={"name": "Spring"}).json()["id"]
    sent = datetime.fromisoformat("2026-11-01T06:00:00+00:00").timestamp()

    def make(variant: str, subject: str) -> int:
        r = api.post("/api/v1/messages", json={
            "recipient": f"p{len(ids)}@example.com", "campaign_id": cid,
            "variant": variant, "subject": subject, "sent_at": sent,
        })  # fmt: skip
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    ids: list[int] = []
    for variant, subject in (("A", "Spring offer: 20% off"), ("B", "Last chance")):
        for _ in range(7):
            ids.append(make(variant, subject))

    report = api.get(f"/api/v1/campaigns/{cid}/report", params={"tz": "Europe/Paris"}).json()
    assert report["variants_verdict"] == (
        "No winner yet: nobody has opened any variant (A 0 of 7, B 0 of 7)."
    )
    assert report["send_time_advice"]["text"] == (
        "Too few human opens to advise a send time (0 so far; advice starts at 10)."
    )

    # 2026-11-03 is a Tuesday; Paris is UTC+1 in November.
    times = [
        "2026-11-03T08:10:00+00:00", "2026-11-03T08:40:00+00:00",  # Tue 9h Paris
        "2026-11-04T09:05:00+00:00", "2026-11-04T09:30:00+00:00",  # Wed 10h
        "2026-11-05T08:15:00+00:00", "2026-11-05T09:50:00+00:00",  # Thu 9h, 10h
        "2026-11-05T09:55:00+00:00",
        "2026-11-07T19:00:00+00:00", "2026-11-08T20:00:00+00:00",  # weekend evenings
        "2026-11-02T06:00:00+00:00", "2026-11-06T14:00:00+00:00",
    ]  # fmt: skip
    for mid, at in zip(ids, times, strict=False):
        _open(api, mid, at)
    _open(api, ids[0], "2026-11-09T22:00:00+00:00")  # a second open: not a first open

    report = api.get(f"/api/v1/campaigns/{cid}/report", params={"tz": "Europe/Paris"}).json()
    a, b = report["variants"]
    assert (a["subject"], b["subject"]) == ("Spring offer: 20% off", "Last chance")
    # pooled 11/14, se = sqrt(11/14 * 3/14 * 2/7) = 0.2193, z = (3/7) / se = 1.954
    assert a["verdict"] == b["verdict"] == "too few messages to tell (p = 0.051)"
    assert report["variants_verdict"] == (
        "No winner yet: A opened 100% (7 of 7), B 57% (4 of 7); a gap this size could be "
        "chance (p = 0.051). About 14 messages per variant would show it."
    )
    advice = report["send_time_advice"]
    assert advice["text"] == (
        "Most first opens: Tue–Thu 9–11 (Europe/Paris), 7 of 11 people (64%)."
    )
    window = (advice["weekdays"], advice["hours"], advice["tz"], advice["opens"])
    assert window == (["Tue", "Wed", "Thu"], [9, 10], "Europe/Paris", 7)
    assert (advice["sample"], advice["share"], advice["min_sample"]) == (11, 0.6364, 10)
    # Another zone moves the window, not the sample.
    utc = api.get(f"/api/v1/campaigns/{cid}/report", params={"tz": "UTC"}).json()
    assert utc["send_time_advice"]["text"] == (
        "Most first opens: Tue–Thu 8–10 (UTC), 7 of 11 people (64%)."
    )


def test_migration_counts_first_opens_recorded_before_it(db_url: str) -> None:
    """0013 fills the ``first_open`` counter from message_stats, per campaign
    and UTC hour, so advice covers opens from before the upgrade."""
    from sqlalchemy import text

    from mailbeacon.store import upgrade
    from tests.helpers import engine_at

    engine = engine_at(db_url, "0012_find")
    try:
        rows = [(1, 3, 7200.0), (2, 3, 10799.9), (3, 3, 10800.0), (4, 5, 7300.0), (5, 3, None)]
        with engine.begin() as conn:
            for mid, cid, first in rows:
                conn.execute(
                    text(
                        "INSERT INTO message_stats (message_id, campaign_id, first_human_open_at)"
                        " VALUES (:m, :c, :f)"
                    ),
                    {"m": mid, "c": cid, "f": first},
                )
        upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(
                text(
                    "SELECT campaign_id, key, n FROM counters WHERE dim = 'first_open' "
                    "ORDER BY campaign_id, key"
                )
            ).all()
        assert [tuple(r) for r in got] == [(3, "2", 2), (3, "3", 1), (5, "2", 1)]
    finally:
        engine.dispose()
