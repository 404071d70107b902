"""Exports: a campaign's raw events or its recipients, as CSV or JSON, streamed.

Rows come through a server-side cursor (``stream_results`` + ``yield_per``
on PostgreSQL; SQLite's cursor steps through the file anyway), so an export
of 10M events holds one chunk of 2,000 rows in memory, not the campaign.
Exports are the one reader of raw events: that is what they are for.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal

from sqlalchemy import Engine, func, select

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


def _query(campaign_id: int, what: What) -> tuple[Any, Callable[[Any], dict[str, Any]]]:
    if what == "events":
        e = events.c
        q = (
            select(events, messages_t.c.recipient, messages_t.c.variant)
            .join(messages_t, messages_t.c.id == e.message_id)
            .where(messages_t.c.campaign_id == campaign_id)
            .order_by(e.id)
        )
        return q, _event
    s = message_stats.c
    cols = [c for c in message_stats.c if c.name not in ("campaign_id", "variant", "sent_at")]
    q = (
        select(*cols, messages_t.c.recipient, messages_t.c.subject, messages_t.c.variant,
               messages_t.c.sent_at)
        .join(messages_t, messages_t.c.id == s.message_id)
        .where(messages_t.c.campaign_id == campaign_id)
        .order_by(s.message_id)
    )
    return q, _recipient


def rows(engine: Engine, campaign_id: int, what: What) -> Iterator[dict[str, Any]]:
    q, shape = _query(campaign_id, what)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(q)
        for part in result.partitions(CHUNK):
            for r in part:
                yield shape(r)


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
