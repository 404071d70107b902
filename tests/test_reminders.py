"""Reminders: when they are due, that each fires once, and what cancels them."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mailbeacon import reminders
from mailbeacon.model import Event, Kind
from mailbeacon.store import make_engine
from mailbeacon.store import reminders as store
from mailbeacon.store.schema import events, outbox
from mailbeacon.store.schema import reminders as reminder_rows
from tests.helpers import cli

PARIS = ZoneInfo("Europe/Paris")
DAY = 86400.0


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    "after,want",
    [
        ("3d", reminders.Delay(3, "days")),
        ("36h", reminders.Delay(36, "hours")),
        ("90 min", reminders.Delay(90, "minutes")),
        ("1w", reminders.Delay(1, "weeks")),
        ("2 business days", reminders.Delay(2, "business_days")),
        ("2 Business  Days", reminders.Delay(2, "business_days")),
        ("5bd", reminders.Delay(5, "business_days")),
    ],
)
def test_parse_after(after: str, want: reminders.Delay) -> None:
    assert reminders.parse_after(after) == want


@pytest.mark.parametrize("after", ["", "3", "0d", "three days", "3 fortnights", "-1d"])
def test_bad_after_says_what_to_write(after: str) -> None:
    with pytest.raises(reminders.Invalid, match="2 business days"):
        reminders.parse_after(after)


@pytest.mark.parametrize(
    "sent,after,due",
    [
        # Business days skip the weekend, in the sender's zone.
        ("2024-06-07 17:00", "1 business day", "2024-06-10 17:00"),  # Fri -> Mon
        ("2024-06-07 17:00", "2 business days", "2024-06-11 17:00"),  # Fri -> Tue
        ("2024-06-08 10:00", "1 business day", "2024-06-10 10:00"),  # Sat -> Mon
        ("2024-06-05 09:30", "2 business days", "2024-06-07 09:30"),  # Wed -> Fri
        ("2024-06-07 23:30", "1 business day", "2024-06-10 23:30"),  # late Friday, local
        # Days keep the wall clock across the DST change (31 March 2024 in Paris).
        ("2024-03-30 09:00", "3d", "2024-04-02 09:00"),
        ("2024-06-07 17:00", "1w", "2024-06-14 17:00"),
    ],
)
def test_due_in_the_senders_zone(sent: str, after: str, due: str) -> None:
    assert reminders.due_at(at(sent), reminders.parse_after(after), PARIS) == at(due)


def test_hours_are_hours_even_across_dst() -> None:
    sent = at("2024-03-30 21:00")
    assert reminders.due_at(sent, reminders.parse_after("12h"), PARIS) == sent + 12 * 3600


def test_late_friday_utc_is_saturday_in_tokyo() -> None:
    sent = at("2024-06-07 16:00", ZoneInfo("UTC"))  # Saturday 01:00 in Tokyo
    due = reminders.due_at(sent, reminders.parse_after("1 business day"), ZoneInfo("Asia/Tokyo"))
    assert due == at("2024-06-10 01:00", ZoneInfo("Asia/Tokyo"))


# --- in the store, with the node's hooks ---------------------------------------


def _node(api: Any) -> Any:
    return api.app.fallback.state.node


def _message(api: Any, sent_at: float, **body: Any) -> int:
    r = api.post("/api/v1/messages", json={"recipient": "ana@example.com", "sent_at": sent_at,
                                           "subject": "Proposal", **body})  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _reply(api: Any, message_id: int, label: str = "human") -> None:
    event = Event(
        message_id=message_id, kind=Kind.REPLY, at=time.time(), method="IMAP", ip="",
        user_agent="", headers={"from": "ana@example.com", "reply_id": f"r{label}"},
        label=label, reasons=["thread:in_reply_to"],
    )  # fmt: skip
    assert api.portal.call(_node(api).recorder.add, event)


def test_a_reminder_fires_once_through_every_channel(api: Any) -> None:
    node = _node(api)
    sent = time.time()
    hook = api.post("/api/v1/webhooks", json={"url": "https://hooks.example/mb",
                                              "events": ["message.reminder"]})  # fmt: skip
    assert hook.status_code == 201
    mid = _message(api, sent)
    r = api.post("/api/v1/reminders", json={"message_id": mid, "if": "not_replied", "after": "3d",
                                            "tz": "Europe/Paris"})  # fmt: skip
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["if"], made["state"], made["tz"]) == ("not_replied", "pending", "Europe/Paris")

    assert node.reminders.run_once(now=sent + 2 * DAY).fired == []  # not due yet
    fired = node.reminders.run_once(now=sent + 3 * DAY + 1).fired
    assert [e.message_id for e in fired] == [mid]
    # Again, and from a fresh loop (a restart, another node): nothing more.
    assert node.reminders.run_once(now=sent + 4 * DAY).fired == []
    other = reminders.ReminderLoop(node.engine, node.recorder.tx_hooks)
    assert other.run_once(now=sent + 5 * DAY).fired == []

    evs = api.get(f"/api/v1/messages/{mid}/events").json()
    assert [(e["kind"], e["label"]) for e in evs] == [("reminder", "not_replied")]
    got = api.get("/api/v1/reminders", params={"message_id": mid}).json()
    assert [(g["state"], g["event_id"]) for g in got] == [("fired", evs[0]["id"])]
    with node.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.channel, outbox.c.event_type)).all()
    assert [tuple(r) for r in rows] == [("webhook", "message.reminder")]


def test_the_awaited_event_cancels_it(api: Any) -> None:
    node = _node(api)
    sent = time.time()
    replied, read, bounced = (_message(api, sent) for _ in range(3))
    for mid in (replied, bounced):
        reminders.create(node.engine, condition="not_replied", after="3d", tz="UTC",
                         message_id=mid)  # fmt: skip
    reminders.create(node.engine, condition="not_opened", after="2 business days", tz="UTC",
                     message_id=read)  # fmt: skip
    _reply(api, replied)  # cancels "not replied" in the reply's own transaction
    _reply(api, read)  # a human reply implies the read: cancels "not opened"
    _reply(api, bounced, "bounce")  # a bounce is no reply: the reminder stays
    states = {
        r["message_id"]: (r["state"], r["reason"]) for r in api.get("/api/v1/reminders").json()
    }
    assert states == {
        replied: ("cancelled", "replied"),
        read: ("cancelled", "opened"),
        bounced: ("pending", None),
    }
    fired = node.reminders.run_once(now=sent + 10 * DAY).fired
    assert [e.message_id for e in fired] == [bounced]


def test_made_after_the_event_it_is_cancelled_when_due(api: Any) -> None:
    node = _node(api)
    sent = time.time()
    mid = _message(api, sent)
    _reply(api, mid)
    reminders.create(node.engine, condition="not_replied", after="1h", tz="UTC", message_id=mid)
    outcome = node.reminders.run_once(now=sent + 2 * 3600)
    assert outcome.fired == [] and [why for _, why in outcome.cancelled] == ["replied"]


def test_campaign_reminders_and_the_api_errors(api: Any) -> None:
    cid = api.post("/api/v1/campaigns", json={"name": "Q3"}).json()["id"]
    ids = [_message(api, time.time(), campaign_id=cid) for _ in range(3)]
    r = api.post("/api/v1/reminders", json={"campaign_id": cid, "if": "not_opened", "after": "2d"})
    assert r.status_code == 201 and [x["message_id"] for x in r.json()["reminders"]] == ids
    bad = [
        ({"message_id": ids[0], "if": "not_read", "after": "3d"}, 422, "not_opened"),
        ({"message_id": ids[0], "if": "not_opened", "after": "soon"}, 422, "business days"),
        ({"message_id": ids[0], "if": "not_opened", "after": "3d", "tz": "Mars/Base"}, 422, "IANA"),
        ({"if": "not_opened", "after": "3d"}, 422, "exactly one"),
        ({"message_id": 99999, "if": "not_opened", "after": "3d"}, 404, "does not exist"),
    ]
    for body, status, says in bad:
        got = api.post("/api/v1/reminders", json=body)
        assert got.status_code == status and says in got.json()["message"], (body, got.text)
    first = r.json()["reminders"][0]["id"]
    assert api.delete(f"/api/v1/reminders/{first}").status_code == 204
    assert api.delete(f"/api/v1/reminders/{first}").status_code == 404


def test_a_default_makes_one_reminder_per_message(api: Any) -> None:
    node = _node(api)
    r = api.put("/api/v1/reminders/defaults/*", json={"if": "not_replied", "after": "3d",
                                                      "tz": "Europe/Paris"})  # fmt: skip
    assert r.status_code == 200, r.text
    now = time.time()
    mid = _message(api, now)
    _message(api, now - 10 * DAY)  # sent before the default existed: left alone
    node.reminders.run_once(now=now)
    node.reminders.run_once(now=now + 1)
    rows = api.get("/api/v1/reminders").json()
    assert [(x["message_id"], x["default_of"]) for x in rows] == [(mid, "*")]
    assert api.get("/api/v1/reminders/defaults").json() == [
        {"sender": "*", "if": "not_replied", "after": "3d", "tz": "Europe/Paris"}
    ]
    assert api.delete("/api/v1/reminders/defaults/*").status_code == 204


def test_two_nodes_firing_at_once_fire_each_reminder_once(api: Any, db_url: str) -> None:
    node = _node(api)
    sent = time.time() - 10 * DAY
    for _ in range(40):
        reminders.create(node.engine, condition="not_clicked", after="1d", tz="UTC",
                         message_id=_message(api, sent))  # fmt: skip
    from mailbeacon.config import normalise_db_url

    engines = [make_engine(normalise_db_url(db_url)) for _ in range(2)]
    fired: list[int] = []
    errors: list[BaseException] = []

    def node_loop(engine: Any) -> None:
        try:
            for _ in range(20):
                out = store.fire_due(engine, [], time.time(), limit=5)
                fired.extend(e.message_id for e in out.fired)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=node_loop, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    # The app's own loop is a third node firing at the same time: between
    # them all, every reminder fired, and none twice.
    assert len(fired) == len(set(fired)) and fired
    with node.engine.connect() as conn:
        n = conn.execute(select(func.count()).where(events.c.kind == "reminder")).scalar()
        states = conn.execute(select(reminder_rows.c.state).distinct()).scalars().all()
    assert n == 40 and states == ["fired"]
    for e in engines:
        e.dispose()


def test_cli_remind(db_url: str) -> None:
    r = cli("message", "new", "--to", "ana@example.com", db=db_url)
    mid = r.stdout.split()[1]
    out = cli("remind", mid, "--if", "not_replied", "--after", "2 business days", "--tz",
              "Europe/Paris", db=db_url).stdout  # fmt: skip
    assert f"message {mid} not replied by" in out and "Europe/Paris" in out
    listed = cli("reminders", "list", db=db_url).stdout
    assert "not_replied" in listed and "pending" in listed
    bad = cli("remind", mid, "--if", "not_read", "--after", "3d", db=db_url, check=False)
    assert bad.returncode == 2 and "not_opened" in bad.stderr and "Traceback" not in bad.stderr
    d = cli("reminders", "default", "ana@example.com", "--if", "not_opened", "--after", "1w",
            db=db_url).stdout  # fmt: skip
    assert "Every message from ana@example.com" in d
    assert cli("reminders", "default", "ana@example.com", "--off", db=db_url).returncode == 0
