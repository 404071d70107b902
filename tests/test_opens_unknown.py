"""Honest "not opened" (issue 12 item 5): recipients at a domain that never
shows a person's open are "unknown", with the reason, in the recipients
report and on the dashboard, through the app in process (tests/inprocess.py)."""

from __future__ import annotations

from tests.inprocess import InProcess
from tests.test_auth import owner_session
from tests.traffic import CHROME, GMAIL_PROXY, ago, hit, labels


def test_a_domain_without_a_single_human_open_is_unknown(tracked_app: InProcess) -> None:
    cid = tracked_app.api("POST", "/api/v1/campaigns", json={"name": "q3"}).json()["id"]

    def send(who: str, days: float = 2) -> dict[str, object]:
        return tracked_app.message(recipient=who, campaign_id=cid, sent_at=ago(days * 86400))

    # Ten messages to a domain whose gateway only scans: Safe Links fetches
    # the pixel of some, nobody's open ever shows.
    blocked = [send(f"p{i}@Blocked.example") for i in range(10)]
    hit(str(blocked[0]["open_url"]), "40.107.218.12", CHROME)
    # Nine messages: not enough to say anything.
    few = [send(f"q{i}@few.example") for i in range(9)]
    # Ten messages, one read through Gmail's proxy: opens there are visible.
    seen = [send(f"r{i}@seen.example") for i in range(10)]
    hit(str(seen[3]["open_url"]), "66.249.84.222", GMAIL_PROXY)
    # Ten sent an hour ago: too soon to tell.
    fresh = [send(f"s{i}@fresh.example", days=1 / 24) for i in range(10)]
    assert labels(tracked_app, int(seen[3]["id"]))[0][1] == "human_via_proxy"
    assert labels(tracked_app, int(blocked[0]["id"]))[0][1] == "security_scanner"

    r = tracked_app.api(
        "GET", f"/api/v1/campaigns/{cid}/recipients", params={"filter": "not_opened", "limit": 1000}
    )
    assert r.status_code == 200
    status = {row["recipient"]: (row["open_status"], row["open_status_reason"]) for row in r.json()}
    for m in blocked:
        st, why = status[str(m["recipient"])]
        assert st == "unknown" and "blocked.example" in (why or ""), (st, why)
    for group in (few, seen, fresh):
        for m in group:
            if m is seen[3]:
                continue
            assert status[str(m["recipient"])] == ("not_opened", None), m["recipient"]
    assert str(seen[3]["recipient"]) not in status  # opened

    c = owner_session(tracked_app)
    page = c.get(f"/messages/{blocked[1]['id']}").text  # no hit at all
    assert "Opens unknown" in page and "blocks images" in page
    page = c.get(f"/messages/{few[0]['id']}").text
    assert "Opens unknown" not in page
    page = c.get(f"/campaigns/{cid}?filter=not_opened").text
    assert ">unknown</span>" in page
