"""Data care: drop old raw events, and export, erase or opt out one recipient.

Purging keeps the rollups: reports read only those, so a campaign's report
is the same after ``purge`` as before (tested). Erasing a recipient deletes
everything that names them (messages, links, events, message_stats,
link_stats) but leaves the anonymous per-campaign counters, so totals that
were already reported do not change retroactively (docs/reports.md).

Running nodes cache message facts in memory; every change here bumps the
``privacy_version`` setting, which each node compares on its 10 s refresh
and then forgets what it cached (web/node.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from mailbeacon.store import events as event_store
from mailbeacon.store.schema import (
    events,
    link_stats,
    links,
    message_stats,
    messages,
    optouts,
    settings,
)
from mailbeacon.timefmt import iso

PRIVACY_VERSION = "privacy_version"
# Rows deleted per transaction: on SQLite a purge shares the one write lock
# with the recorder, and 5k rows take ~20 ms, short enough that no hit waits
# noticeably while a long purge runs.
PURGE_CHUNK = 5000
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dh])\s*$", re.IGNORECASE)


def parse_age(text: str) -> float:
    """``90d`` or ``12h`` -> seconds (ValueError otherwise)."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an age such as 90d or 12h")
    return float(m.group(1)) * (86400 if m.group(2).lower() == "d" else 3600)


def purge(engine: Engine, older_than_s: float, now: float | None = None) -> int:
    """Delete raw events older than the age; the rollups stay. Returns rows deleted."""
    cutoff = (now if now is not None else time.time()) - older_than_s
    total = 0
    while True:
        with engine.begin() as conn:
            ids = select(events.c.id).where(events.c.at < cutoff).limit(PURGE_CHUNK)
            n = conn.execute(delete(events).where(events.c.id.in_(ids.scalar_subquery()))).rowcount
        total += n
        if n < PURGE_CHUNK:
            return total


def bump_privacy_version(conn: Connection) -> None:
    value = str(time.time_ns())
    done = conn.execute(
        update(settings).where(settings.c.name == PRIVACY_VERSION).values(value=value)
    )
    if not done.rowcount:
        conn.execute(insert(settings).values(name=PRIVACY_VERSION, value=value))


def privacy_version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(settings.c.value).where(settings.c.name == PRIVACY_VERSION)
        ).scalar()


def _addresses(address: str) -> list[str]:
    # As typed and lowercased: domains are case-insensitive and in practice
    # so are local parts; an exact match alone would miss "Ana@Example.com".
    a = address.strip()
    return sorted({a, a.lower()})


def message_ids(conn: Connection, address: str) -> list[int]:
    rows = conn.execute(
        select(messages.c.id).where(messages.c.recipient.in_(_addresses(address)))
    ).all()
    return [int(r[0]) for r in rows]


def is_opted_out(conn: Connection, address: str) -> bool:
    q = select(optouts.c.recipient).where(optouts.c.recipient == address.strip().lower())
    return conn.execute(q).first() is not None


def recipient_export(engine: Engine, address: str) -> dict[str, Any]:
    """Everything stored about one address: their messages, links and events."""
    out: dict[str, Any] = {"recipient": address.strip(), "messages": []}
    with engine.connect() as conn:
        out["opted_out"] = is_opted_out(conn, address)
        for mid in message_ids(conn, address):
            m = conn.execute(select(messages).where(messages.c.id == mid)).one()._mapping
            lks = conn.execute(
                select(links.c.position, links.c.url)
                .where(links.c.message_id == mid)
                .order_by(links.c.position)
            ).all()
            evs = conn.execute(
                select(events).where(events.c.message_id == mid).order_by(events.c.id)
            ).all()
            out["messages"].append(
                {
                    "id": mid,
                    "recipient": m["recipient"],
                    "subject": m["subject"],
                    "campaign_id": m["campaign_id"],
                    "variant": m["variant"],
                    "sent_at": iso(m["sent_at"]),
                    "created_at": iso(m["created_at"]),
                    "links": [{"position": p, "url": u} for p, u in lks],
                    "events": [event_store.public(e._mapping) for e in evs],
                }
            )
    return out


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def recipient_erase(engine: Engine, address: str) -> dict[str, int]:
    """Delete the address's messages and all that hangs off them; counters stay."""
    done = {"messages": 0, "events": 0}
    with engine.begin() as conn:
        ids = message_ids(conn, address)
        for part in _chunks(ids):
            # message_stats first: the writer locks these rows before it
            # inserts a batch's events, so either this waits for the batch
            # and deletes its events below, or the batch finds the message
            # gone. Deleting events first left the batch's events orphaned.
            conn.execute(delete(message_stats).where(message_stats.c.message_id.in_(part)))
            done["events"] += conn.execute(
                delete(events).where(events.c.message_id.in_(part))
            ).rowcount
            conn.execute(delete(link_stats).where(link_stats.c.message_id.in_(part)))
            conn.execute(delete(links).where(links.c.message_id.in_(part)))
            done["messages"] += conn.execute(
                delete(messages).where(messages.c.id.in_(part))
            ).rowcount
        bump_privacy_version(conn)
    return done


def set_optout(engine: Engine, address: str, out: bool = True) -> bool:
    """Opt the address out (or back in); True when something changed."""
    key = address.strip().lower()
    with engine.begin() as conn:
        present = is_opted_out(conn, key)
        if out == present:
            return False
        if out:
            conn.execute(insert(optouts).values(recipient=key, created_at=time.time()))
        else:
            conn.execute(delete(optouts).where(optouts.c.recipient == key))
        bump_privacy_version(conn)
    return True
