"""Compose time done right (issue 12 item 4): `PATCH /api/v1/messages/{id}`
{sent_at}, `mailbeacon message sent`, the dashboard's "Mark as sent", each
relabelling the earlier hits, with their counts moved; through the app in
process (tests/inprocess.py)."""

from __future__ import annotations

import time

from tests.helpers import Running, cli
from tests.inprocess import InProcess
from tests.test_auth import csrf_of, owner_session
from tests.traffic import CHROME, THUNDERBIRD, hit, labels


def _settled_summary(srv: Running, mid: int, opens_by_label: dict[str, int]) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        summary = srv.api("GET", f"/api/v1/messages/{mid}").json()["summary"]
        if summary["opens_by_label"] == opens_by_label or time.monotonic() > deadline:
            return dict(summary)
        time.sleep(0.1)


def test_patch_sent_at_now_relabels_the_hits_before_it(tracked_app: InProcess) -> None:
    msg = tracked_app.message()  # "Track an email": no sent_at while composing
    # The sender previews the draft in Thunderbird from another network: with
    # no sent_at and no sign of the sender, it counts as the recipient's.
    hit(msg["open_url"], "203.0.113.50", THUNDERBIRD)
    assert labels(tracked_app, msg["id"])[0][1] == "human_direct"
    r = tracked_app.api("PATCH", f"/api/v1/messages/{msg['id']}", json={"sent_at": "now"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == msg["id"] and body["sent_at"] and body["open_url"] == msg["open_url"]
    [(_, lab, reasons)] = labels(tracked_app, msg["id"])
    assert lab == "self" and "timing:before_send" in reasons, reasons
    summary = _settled_summary(tracked_app, msg["id"], {"self": 1})
    assert summary["opens_by_label"] == {"self": 1} and not summary["opened"]
    # Later hits are judged from the new sent_at: Safe Links a second after it.
    hit(msg["open_url"], "40.107.218.12", CHROME)
    assert labels(tracked_app, msg["id"])[1][1] == "security_scanner"


def test_patch_refuses_bad_times_and_unknown_messages(tracked_app: InProcess) -> None:
    msg = tracked_app.message()
    r = tracked_app.api("PATCH", f"/api/v1/messages/{msg['id']}", json={"sent_at": "yesterday"})
    assert r.status_code == 422 and r.json()["error"] == "invalid"
    r = tracked_app.api("PATCH", "/api/v1/messages/999999", json={"sent_at": "now"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = tracked_app.api("PATCH", f"/api/v1/messages/{msg['id']}", json={})
    assert r.status_code == 422


def test_cli_message_sent_at_a_given_time(tracked_app: InProcess) -> None:
    msg = tracked_app.message()
    hit(msg["open_url"], "203.0.113.51", THUNDERBIRD)
    assert labels(tracked_app, msg["id"])[0][1] == "human_direct"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    out = cli("message", "sent", str(msg["id"]), "--at", when, db=tracked_app.db).stdout
    assert "1 earlier hits relabelled" in out, out
    assert labels(tracked_app, msg["id"])[0][1] == "self"
    bad = cli("message", "sent", str(msg["id"]), "--at", "soon", db=tracked_app.db, check=False)
    assert bad.returncode == 2 and "--at" in bad.stderr and "Traceback" not in bad.stderr


def test_dashboard_mark_as_sent(tracked_app: InProcess) -> None:
    c = owner_session(tracked_app)
    msg = tracked_app.message()
    page = c.get(f"/messages/{msg['id']}").text
    assert "Mark as sent" in page and "no send time yet" in page
    r = c.post(f"/messages/{msg['id']}/sent", data={"csrf": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == f"/messages/{msg['id']}"
    page = c.get(f"/messages/{msg['id']}").text
    assert (
        "Mark as sent" not in page
        and tracked_app.api("GET", f"/api/v1/messages/{msg['id']}").json()["sent_at"]
    )
    forged = c.post(f"/messages/{msg['id']}/sent", data={"csrf": "forged"})
    assert forged.status_code in (400, 403)
    anonymous = tracked_app.session().post(f"/messages/{msg['id']}/sent")
    assert anonymous.status_code in (303, 401, 403)
