"""Data care: drop old raw events, and export, erase or opt out one recipient.

Purging keeps the rollups: reports read only those, so a campaign's report
is the same after ``purge`` as before (tested). Erasing a recipient deletes
every row that names them or what they did (``PERSONAL``: messages, links,
events, per-message rollups, and the webhook and email deliveries whose
payloads hold their address, subject and event) but leaves the anonymous
per-campaign counters, so totals that were already reported do not change
retroactively (docs/privacy.md).

Running nodes cache message facts in memory; every change here bumps the
``privacy_version`` setting, which each node compares on its 10 s refresh
and then forgets what it cached (node.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, delete, func, insert, select, update

from mailbeacon.store import events as event_store
from mailbeacon.store import messages as message_store
from mailbeacon.store.schema import (
    campaigns,
    counters,
    dead_letters,
    events,
    link_stats,
    links,
    message_stats,
    messages,
    optouts,
    outbox,
    relay_copies,
    relay_submissions,
    reminders,
    settings,
)

PRIVACY_VERSION = "privacy_version"
# Rows deleted per transaction: on SQLite a purge shares the one write lock
# with the recorder, and 5k rows take ~20 ms, short enough that no hit waits
# noticeably while a long purge runs.
PURGE_CHUNK = 5000
# Every table holding rows about one message, with its message-id column, in
# the order erase deletes them (children first). A new table that stores
# anything about a message belongs here: erase, and the test that looks for
# the erased address in every table (tests/test_erase.py), then cover it.
PERSONAL: tuple[tuple[Table, str], ...] = (
    # message_stats first: the writer locks these rows before it inserts a
    # batch's events, so an erase either waits for the batch and deletes its
    # events next, or the batch finds the message gone. Deleting events first
    # left a concurrent batch's events orphaned (tests/test_ids.py).
    (message_stats, "message_id"),
    (events, "message_id"),
    (dead_letters, "message_id"),  # hits the store refused: the event as JSON
    (outbox, "message_id"),  # deliveries: payload and last_error hold address, subject, event
    (link_stats, "message_id"),
    (links, "message_id"),
    (messages, "id"),
)
# Rows that only matter for a while, with the column that says when they were
# made: what ``purge`` and ``retention_days`` delete. Deliveries older than
# the events they announce would outlive them with the same content.
AGED: tuple[tuple[Table, str], ...] = (
    (events, "at"),
    (dead_letters, "at"),
    (outbox, "created_at"),
)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dh])\s*$", re.IGNORECASE)


def parse_age(text: str) -> float:
    """``90d`` or ``12h`` -> seconds (ValueError otherwise)."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an age such as 90d or 12h")
    return float(m.group(1)) * (86400 if m.group(2).lower() == "d" else 3600)


def purge(engine: Engine, older_than_s: float, now: float | None = None) -> dict[str, int]:
    """Delete raw events and deliveries older than the age; the rollups stay.

    Returns rows deleted per table (``{"events": n, "outbox": m}``).
    """
    cutoff = (now if now is not None else time.time()) - older_than_s
    return {table.name: _purge_table(engine, table, table.c[col], cutoff) for table, col in AGED}


def _purge_table(engine: Engine, table: Table, at: Column[Any], cutoff: float) -> int:
    total = 0
    while True:
        with engine.begin() as conn:
            ids = select(table.c.id).where(at < cutoff).limit(PURGE_CHUNK)
            n = conn.execute(delete(table).where(table.c.id.in_(ids.scalar_subquery()))).rowcount
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


def message_ids(conn: Connection, address: str) -> list[int]:
    """The address's messages, whatever the case it was written in.

    Compared as ``lower(recipient) = lower(:address)`` on both sides in SQL, so
    the index on ``lower(recipient)`` serves it and both sides fold the same
    way (SQLite folds ASCII only, PostgreSQL all of Unicode).
    """
    rows = conn.execute(
        select(messages.c.id)
        .where(func.lower(messages.c.recipient) == func.lower(address.strip()))
        .order_by(messages.c.id)
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
                    **message_store.public_fields(m, mid),
                    "links": [{"position": p, "url": u} for p, u in lks],
                    "events": [event_store.public(e._mapping) for e in evs],
                }
            )
    return out


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def recipient_erase(engine: Engine, address: str) -> dict[str, int]:
    """Delete the address's messages and all that hangs off them; counters stay.

    Returns how many messages, events and deliveries went.
    """
    with engine.begin() as conn:
        done = delete_messages(conn, message_ids(conn, address))
        bump_privacy_version(conn)
    return done


def delete_messages(conn: Connection, ids: Sequence[int]) -> dict[str, int]:
    """Delete these messages and every row about them (``PERSONAL``), in the
    caller's transaction; how many messages, events and deliveries went."""
    done = {"messages": 0, "events": 0, "deliveries": 0}
    counted = {"messages": "messages", "events": "events", "outbox": "deliveries"}
    for part in _chunks(ids):
        # Reminders go with their message by foreign key; said here too so a
        # store without enforced foreign keys loses them as well.
        conn.execute(delete(reminders).where(reminders.c.message_id.in_(part)))
        _delete_relay_copies(conn, part)
        for table, col in PERSONAL:
            n = conn.execute(delete(table).where(table.c[col].in_(part))).rowcount
            if table.name in counted:
                done[counted[table.name]] += n
    return done


def _delete_relay_copies(conn: Connection, ids: Sequence[int]) -> None:
    """The relay's queue rows for these messages (recipient, last error), and
    each submission none of whose copies is left (its headers name the
    recipients). A copy not sent yet is never sent: deleting a message stops
    it. A submission with copies to other people left keeps its headers until
    those are done (they are the mail's To and Cc as everyone received them)."""
    subs = select(relay_copies.c.submission_id).where(relay_copies.c.message_id.in_(ids))
    touched = [int(r[0]) for r in conn.execute(subs.distinct()).all()]
    conn.execute(delete(relay_copies).where(relay_copies.c.message_id.in_(ids)))
    if touched:
        left = select(relay_copies.c.id).where(
            relay_copies.c.submission_id == relay_submissions.c.id
        )
        conn.execute(
            delete(relay_submissions).where(relay_submissions.c.id.in_(touched), ~left.exists())
        )


def campaign_delete(engine: Engine, campaign_id: int) -> dict[str, int] | None:
    """Delete a campaign with its messages, their events, rollups, links,
    reminders and deliveries, and the campaign's counters; None if it does
    not exist. Unlike an erase, nothing of it stays: the totals go too."""
    with engine.begin() as conn:
        found = conn.execute(select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
        if found is None:
            return None
        ids = [
            int(r[0])
            for r in conn.execute(
                select(messages.c.id).where(messages.c.campaign_id == campaign_id)
            ).all()
        ]
        done = delete_messages(conn, ids)
        conn.execute(delete(counters).where(counters.c.campaign_id == campaign_id))
        conn.execute(delete(campaigns).where(campaigns.c.id == campaign_id))
        bump_privacy_version(conn)  # nodes forget the messages they cached
    return done


def set_optout(engine: Engine, address: str, out: bool = True) -> bool:
    """Opt the address out (or back in); True when something changed.

    Opting out also cancels the deliveries still waiting to announce their
    hits (and forgets those payloads): a person who asked not to be tracked
    is not reported on a minute later. What was recorded before stays, as
    with any opt-out; ``recipient_erase`` removes it.
    """
    key = address.strip().lower()
    with engine.begin() as conn:
        present = is_opted_out(conn, key)
        if out == present:
            return False
        if out:
            conn.execute(insert(optouts).values(recipient=key, created_at=time.time()))
            for part in _chunks(message_ids(conn, key)):
                conn.execute(
                    update(outbox)
                    .where(outbox.c.message_id.in_(part), outbox.c.status == "pending")
                    .values(
                        status="cancelled",
                        payload=None,
                        last_error="recipient opted out",
                        locked_until=None,
                    )
                )
        else:
            conn.execute(delete(optouts).where(optouts.c.recipient == key))
        bump_privacy_version(conn)
    return True
