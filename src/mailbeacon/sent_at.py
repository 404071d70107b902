"""Setting a message's ``sent_at`` after the fact ("Mark as sent").

1-to-1 mail is often tracked before it is written: the message is created
without ``sent_at`` and the sender composes, tests and sends later. Once
``sent_at`` is known, every earlier hit is judged again with it: fetches
before it are the sender's own (nobody else has the URL yet), and timing
rules measure from it. The replay is reclassify's, for one message, and its
label changes go through hits.labeller.apply_relabels with their rollup
corrections (issue 12, item 4).
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import Engine

from mailbeacon.classify.networks import NetworkSet
from mailbeacon.hits import relabel
from mailbeacon.hits.memory import Memory
from mailbeacon.messages import NotFound
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as store

__all__ = ["mark_sent", "parse_when"]


def parse_when(value: str | float | None, parse: Any) -> float:
    """``"now"`` (or nothing) is the current time; else ISO 8601 or unix seconds."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "now"):
        return time.time()
    try:
        when = parse(value)
    except (ValueError, OverflowError):
        when = None
    # A time a message can have been sent at: after 1970, before year 10000.
    if when is None or not math.isfinite(when) or not 0 <= when < 253_402_300_800:
        raise ValueError('sent_at must be "now", ISO 8601 or unix seconds')
    return float(when)


def mark_sent(
    engine: Engine,
    networks: NetworkSet,
    message_id: int,
    when: float,
    memory: Memory | None = None,
) -> int:
    """Store ``sent_at`` and relabel the message's hits; returns how many changed.

    ``memory`` is a running node's: its cached facts and recent events follow,
    so the next hit is judged with the new ``sent_at`` (other nodes pick it up
    when they next load the message).
    """
    with engine.begin() as conn:
        if not store.set_sent_at(conn, message_id, when):
            raise NotFound(f"message {message_id} does not exist")
    changed = relabel.run(engine, networks, message_id=message_id)["changed"]
    if memory is not None:
        memory.put_message(message_id, store.message_info(engine, message_id))
        if changed:
            with engine.connect() as conn:
                stored = {
                    e["id"]: e
                    for e in event_store.list_events(conn, message_id=message_id, limit=1000)
                }
            for ev in memory.recent(message_id):
                row = stored.get(ev.id)
                if row is not None:
                    ev.label, ev.reasons = row["label"], list(row["reasons"])
    return changed
