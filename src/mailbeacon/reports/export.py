"""Exports: a campaign's raw events or its recipients, as CSV or JSON, streamed.

Rows are read in chunks of 2,000, each in its own short connection and
transaction, resuming after the last key read (keyset paging), so an export
of 10M events holds one chunk in memory, not the campaign, and a client that
stops reading holds nothing at all: no pooled connection, no read
transaction. One cursor kept open for the whole download did both: 16
stalled downloads exhausted the pool (the API, the dashboard and first
pixels waited 30 s) and pinned SQLite's WAL, which grew 6 -> 162 MB in 20 s.
The price: an export is not one snapshot; rows written while it runs may
or may not be in it.

Events come grouped by message (messages in id order, each message's events
in the order they were recorded): both stores walk that order straight off
their indexes (``ix_messages_campaign``, ``ix_events_message``), so every
chunk costs the same however far into the campaign it is.
Exports are the one reader of raw events: that is what they are for.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal

from sqlalchemy import Engine, func, select

from mailbeacon import readtime
from mailbeacon.store.schema import CLICK_LABELS, OPEN_LABELS, counters, events, message_stats
from mailbeacon.store.schema import messages as messages_t
from mailbeacon.timefmt import iso

What = Literal["events", "recipients"]
Format = Literal["csv", "json"]
CHUNK = 2000  # rows per fetch and per piece written: ~0.5 MB of CSV

EVENT_FIELDS = [
    "id",
    "message_id",
    "recipient",
    "variant",
    "kind",
    "at",
    "label",
    "reasons",
    "method",
    "ip",
    "user_agent",
    "link_position",
    "url",
    "client",
    "os",
    "device",
    "country",
    "confidence",
    "flags",
    "read_seconds",
    "read_bucket",
]
RECIPIENT_FIELDS = [
    "message_id",
    "recipient",
    "subject",
    "variant",
    "sent_at",
    "opened",
    "opened_at",
    "first_human_open_at",
    "first_human_click_at",
    "last_human_at",
    *[f"open_{lab}" for lab in OPEN_LABELS],
    *[f"click_{lab}" for lab in CLICK_LABELS],
]


def _event(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "message_id": r.message_id,
        "recipient": r.recipient,
        "variant": r.variant,
        "kind": r.kind,
        "at": iso(r.at),
        "label": r.label,
        "reasons": json.loads(r.reasons) if r.reasons else [],
        "method": r.method,
        "ip": r.ip,
        "user_agent": r.user_agent,
        "link_position": r.link_position,
        "url": r.url,
        "client": r.client,
        "os": r.os,
        "device": r.device,
        "country": r.country,
        "confidence": r.confidence,
        "flags": [f for f in (r.flags or "").split(",") if f],
        # Read time (docs/read-time.md)
        "read_seconds": None if r.read_seconds is None else round(float(r.read_seconds), 1),
        "read_bucket": readtime.bucket_of(r.kind, r.label, r.read_seconds),
    }


def _recipient(r: Any) -> dict[str, Any]:
    m = r._mapping
    out = {
        "message_id": m["message_id"],
        "recipient": m["recipient"],
        "subject": m["subject"],
        "variant": m["variant"],
        "sent_at": iso(m["sent_at"]),
        "opened": m["opened_at"] is not None,
    }
    for col in ("opened_at", "first_human_open_at", "first_human_click_at", "last_human_at"):
        out[col] = iso(m[col])
    for col in RECIPIENT_FIELDS[10:]:
        out[col] = int(m[col] or 0)
    return out


def rows(engine: Engine, campaign_id: int, what: What) -> Iterator[dict[str, Any]]:
    chunks = _event_chunks if what == "events" else _recipient_chunks
    for part in chunks(engine, campaign_id):
        yield from part


def _event_chunks(engine: Engine, campaign_id: int) -> Iterator[list[dict[str, Any]]]:
    e, m = events.c, messages_t.c
    base = select(events, m.recipient, m.variant).join(messages_t, m.id == e.message_id)
    last_message, last_event = 0, 0
    while True:
        with engine.connect() as conn:  # released before the chunk is handed on
            part: list[Any] = []
            if last_message:  # the rest of the message the last chunk stopped in
                q = base.where(e.message_id == last_message, e.id > last_event)
                part += conn.execute(q.order_by(e.id).limit(CHUNK)).all()
            if len(part) < CHUNK:  # then the messages after it
                # e.message_id > ... repeats m.id > ... so that PostgreSQL's
                # merge join starts its events index scan there, not at the start.
                q = base.where(
                    m.campaign_id == campaign_id, m.id > last_message, e.message_id > last_message
                )
                part += conn.execute(q.order_by(m.id, e.id).limit(CHUNK - len(part))).all()
        yield [_event(r) for r in part]
        if len(part) < CHUNK:
            return
        last_message, last_event = part[-1].message_id, part[-1].id


def _recipient_chunks(engine: Engine, campaign_id: int) -> Iterator[list[dict[str, Any]]]:
    m = messages_t.c
    cols = [c for c in message_stats.c if c.name not in ("campaign_id", "variant", "sent_at")]
    base = select(*cols, m.recipient, m.subject, m.variant, m.sent_at).join(
        messages_t, m.id == message_stats.c.message_id
    )
    last = 0
    while True:
        with engine.connect() as conn:
            q = base.where(m.campaign_id == campaign_id, m.id > last)
            part = conn.execute(q.order_by(m.id).limit(CHUNK)).all()
        yield [_recipient(r) for r in part]
        if len(part) < CHUNK:
            return
        last = part[-1].message_id


# A spreadsheet runs a cell that starts with one of these as a formula
# (OWASP "CSV injection"); user agents and URLs come from strangers.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    if isinstance(v, list):
        return " ".join(str(x) for x in v)  # reasons, flags: codes never hold spaces
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v  # shown as text; the JSON export keeps the value as it came
    return "" if v is None else v


def render(items: Iterator[dict[str, Any]], what: What, fmt: Format) -> Iterator[str]:
    """Text pieces of the export, each about CHUNK rows long."""
    fields = EVENT_FIELDS if what == "events" else RECIPIENT_FIELDS
    buf = io.StringIO()
    if fmt == "csv":
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(fields)
    else:
        buf.write("[")
    n = 0
    for item in items:
        if fmt == "csv":
            w.writerow([_cell(item[f]) for f in fields])
        else:
            buf.write(("\n" if n == 0 else ",\n") + json.dumps(item, separators=(",", ":")))
        n += 1
        if n % CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if fmt == "json":
        buf.write("\n]\n" if n else "]\n")
    yield buf.getvalue()


def export(engine: Engine, campaign_id: int, what: What, fmt: Format) -> Iterator[str]:
    return render(rows(engine, campaign_id, what), what, fmt)


def estimate(engine: Engine, campaign_id: int, what: What) -> int:
    """Rows an export will have, from the counters (events purged by retention
    are still counted there, so this is an upper bound for events)."""
    with engine.connect() as conn:
        if what == "recipients":
            q = select(counters.c.n).where(
                counters.c.campaign_id == campaign_id,
                counters.c.dim == "unique",
                counters.c.key == "messages",
            )
        else:
            q = select(func.coalesce(func.sum(counters.c.n), 0)).where(
                counters.c.campaign_id == campaign_id, counters.c.dim == "label"
            )
        return int(conn.execute(q).scalar() or 0)
