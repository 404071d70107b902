"""Replies in the numbers: the message, the campaign report, events, webhooks.

In process (the app with its lifespan); reply events are handed to the
node's recorder exactly as the mailbox watcher hands them.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from mailbeacon.model import Event, Kind
from mailbeacon.store.schema import outbox


def _node(api: Any) -> Any:
    return api.app.fallback.state.node


def _reply(api: Any, message_id: int, label: str, sender: str, rid: str) -> None:
    event = Event(
        message_id=message_id, kind=Kind.REPLY, at=time.time(), method="IMAP", ip="",
        user_agent="", headers={"from": sender, "reply_id": rid}, label=label,
        reasons=["no_auto_signal" if label == "human" else "auto_submitted:auto-replied",
                 "thread:in_reply_to"], confidence=1.0,
    )  # fmt: skip
    assert api.portal.call(_node(api).recorder.add, event)


def _open(api: Any, message: dict[str, Any]) -> None:
    """A human open as the tracking path records it (labelled already: the
    test client's address is the API user's, so a real hit would be "self")."""
    event = Event(
        message_id=message["id"], kind=Kind.OPEN, at=time.time() - 60, method="GET",
        ip="198.51.100.7", user_agent="Thunderbird/115.0", label="human_direct",
        reasons=["ua:mail_client"], client="Thunderbird",
    )  # fmt: skip
    assert api.portal.call(_node(api).recorder.add, event)


def test_replies_show_in_the_message_report_events_and_webhooks(api: Any) -> None:
    cid = api.post("/api/v1/campaigns", json={"name": "Outreach"}).json()["id"]
    hook = api.post("/api/v1/webhooks", json={
        "url": "https://hooks.example/mb",
        "events": ["message.replied", "message.auto_replied", "message.bounced"],
    })  # fmt: skip
    assert hook.status_code == 201, hook.text

    def make(rcpt: str) -> dict[str, Any]:
        r = api.post("/api/v1/messages", json={"recipient": rcpt, "campaign_id": cid,
                                               "message_id_header": f"<{rcpt}>"})  # fmt: skip
        assert r.status_code == 201, r.text
        return dict(r.json())

    replied, opened_then_replied, ooo, bounced, quiet = (
        make(f"{n}@example.com") for n in ("ana", "bo", "cy", "dee", "eve")
    )
    assert replied["message_id_header"] == "<ana@example.com>"
    _reply(api, replied["id"], "human", "ana@example.com", "r1")
    _reply(api, replied["id"], "human", "carl@example.com", "r2")  # a colleague, same thread
    _open(api, opened_then_replied)
    _reply(api, opened_then_replied["id"], "human", "bo@example.com", "r3")
    _reply(api, ooo["id"], "auto_reply", "cy@example.com", "r4")
    _reply(api, bounced["id"], "bounce", "mailer-daemon@mx.example", "r5")

    def view(m: dict[str, Any]) -> dict[str, Any]:
        return dict(api.get(f"/api/v1/messages/{m['id']}").json())

    v = view(replied)
    assert (v["replies"], v["bounced"]) == (2, False) and v["replied_at"] is not None
    assert v["summary"]["opened"] and v["opened_by"] == "reply"
    assert view(opened_then_replied)["opened_by"] == "open"
    v = view(ooo)
    assert (v["replies"], v["replied_at"], v["summary"]["opened"]) == (0, None, False)
    assert v["auto_replies"] == 1
    v = view(bounced)
    assert v["bounced"] and v["replies"] == 0 and not v["summary"]["opened"]
    assert view(quiet)["replies"] == 0

    events = api.get(f"/api/v1/messages/{replied['id']}/events").json()
    assert [(e["kind"], e["label"], e["from"]) for e in events] == [
        ("reply", "human", "ana@example.com"),
        ("reply", "human", "carl@example.com"),
    ]
    assert events[0]["reasons"] == ["no_auto_signal", "thread:in_reply_to"]

    report = api.get(f"/api/v1/campaigns/{cid}/report").json()
    assert report["replies"] == {
        "human_unique": 2,
        "human_total": 3,
        "human_reply_rate": 0.4,
        "auto_reply_total": 1,
        "bounce_total": 1,
        "bounced_unique": 1,
        "bounce_rate": 0.2,
        "opened_by_reply_unique": 1,
    }
    assert report["opens"]["human_unique"] == 2  # bo's open, and ana's reply implies hers
    assert report["opens"]["human_pixel_unique"] == 1
    assert sum(r["human_opens"] for r in report["timeline"]) == 1  # replies are not hits

    with api.app_state_engine.connect() as conn:
        types = sorted(r[0] for r in conn.execute(select(outbox.c.event_type)).all())
    assert types == ["message.auto_replied", "message.bounced"] + ["message.replied"] * 3


def test_reclassify_leaves_replies_alone(api: Any) -> None:
    from mailbeacon.classify.networks import NetworkSet
    from mailbeacon.hits import relabel as reclassify

    m = api.post("/api/v1/messages", json={"recipient": "ana@example.com"}).json()
    _reply(api, m["id"], "human", "ana@example.com", "r1")
    _reply(api, m["id"], "bounce", "mailer-daemon@mx.example", "r2")
    before = api.get(f"/api/v1/messages/{m['id']}/events").json()
    reclassify.run(api.app_state_engine, NetworkSet.builtin())
    assert api.get(f"/api/v1/messages/{m['id']}/events").json() == before
    assert api.get(f"/api/v1/messages/{m['id']}").json()["replies"] == 1
