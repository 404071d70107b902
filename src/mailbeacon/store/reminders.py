"""Reminders (SQL only): rows, per-sender defaults, cancelling, and firing
each due reminder exactly once.

Firing is one transaction per batch: claim the due rows (PostgreSQL ``FOR
UPDATE SKIP LOCKED``, so every node can fire at once and none takes a row
another holds; SQLite ``BEGIN IMMEDIATE``, one writer), re-check the
condition against the message's rollup row, then write the reminder event,
its notifications (the recorder's transaction hooks: the outbox) and the
row's new state together. A crash before the commit fires nothing; after
it, the row is no longer pending. So each reminder fires once, whatever
restarts or nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mailbeacon.model import Event, Kind
from mailbeacon.store import events as event_store
from mailbeacon.store.db import begin_write, is_sqlite, placeholder
from mailbeacon.store.schema import (
    campaigns,
    messages,
    relay_copies,
    reminder_defaults,
    reminders,
    senders,
)

TxHook = Callable[[Any, str, bool, Sequence[Event], list[Any]], None]
ALL_SENDERS = "*"
# What cancels a reminder: the rollup flag that turned on -> the condition it ends.
CANCELLED_BY = {"opened": "not_opened", "clicked": "not_clicked", "replied": "not_replied"}


@dataclass(frozen=True)
class Default:
    sender: str
    condition: str
    after: str
    tz: str
    created_at: float


def create(
    conn: Connection,
    *,
    message_id: int,
    condition: str,
    after: str,
    tz: str,
    due_at: float,
    default_of: str | None = None,
    now: float | None = None,
) -> int | None:
    """Insert one reminder; None when ``default_of`` already made one for the message."""
    values = {
        "message_id": message_id,
        "condition": condition,
        "after": after,
        "tz": tz,
        "due_at": due_at,
        "state": "pending",
        "default_of": default_of,
        "created_at": now if now is not None else time.time(),
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(reminders)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["message_id", "default_of"])
        .returning(reminders.c.id)
    )
    if default_of is None:
        stmt = insert(reminders).values(**values).returning(reminders.c.id)  # type: ignore[assignment]
    found = conn.execute(stmt).scalar()
    return int(found) if found is not None else None


def rows(
    engine: Engine, *, message_id: int | None = None, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    q = select(reminders).order_by(reminders.c.id.desc()).limit(limit)
    if message_id is not None:
        q = q.where(reminders.c.message_id == message_id)
    if state is not None:
        q = q.where(reminders.c.state == state)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).all()]


def get(engine: Engine, reminder_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(reminders).where(reminders.c.id == reminder_id)).first()
    return dict(row._mapping) if row else None


def cancel(engine: Engine, reminder_id: int, now: float) -> bool:
    with engine.begin() as conn:
        n = conn.execute(
            update(reminders)
            .where(reminders.c.id == reminder_id, reminders.c.state == "pending")
            .values(state="cancelled", reason="by_user", done_at=now)
        ).rowcount
    return bool(n)


def cancel_met(cur: Any, mark: str, pairs: Sequence[tuple[int, str]], now: float) -> None:
    """In the recorder's transaction: the events that ended a wait
    ((message id, flag) pairs, e.g. a first human open) cancel the reminders
    waiting for them."""
    todo = sorted({(mid, flag) for mid, flag in pairs if flag in CANCELLED_BY})
    if todo:
        cur.executemany(
            f"UPDATE reminders SET state = 'cancelled', reason = {mark}, done_at = {mark} "
            f"WHERE message_id = {mark} AND condition = {mark} AND state = 'pending'",
            [(flag, now, mid, CANCELLED_BY[flag]) for mid, flag in todo],
        )


# --- per-sender defaults -----------------------------------------------------


def set_default(engine: Engine, sender: str, condition: str, after: str, tz: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(reminder_defaults).where(reminder_defaults.c.sender == sender))
        conn.execute(
            insert(reminder_defaults).values(
                sender=sender, condition=condition, after=after, tz=tz, created_at=time.time()
            )
        )


def remove_default(engine: Engine, sender: str) -> bool:
    with engine.begin() as conn:
        return bool(
            conn.execute(
                delete(reminder_defaults).where(reminder_defaults.c.sender == sender)
            ).rowcount
        )


def defaults(engine: Engine) -> list[Default]:
    with engine.connect() as conn:
        found = conn.execute(select(reminder_defaults).order_by(reminder_defaults.c.sender)).all()
    return [Default(r.sender, r.condition, r.after, r.tz, r.created_at) for r in found]


def without_default(
    conn: Connection, d: Default, since: float, limit: int = 1000
) -> list[tuple[int, float]]:
    """(message id, sent_at) of messages sent since ``since`` that ``d`` has
    not made a reminder for: every message for "*", else the relay copies
    the sender sent."""
    made = select(reminders.c.id).where(
        reminders.c.message_id == messages.c.id, reminders.c.default_of == d.sender
    )
    q = select(messages.c.id, messages.c.sent_at).where(messages.c.sent_at >= since, ~made.exists())
    if d.sender != ALL_SENDERS:
        theirs = (
            select(relay_copies.c.message_id)
            .join(senders, senders.c.id == relay_copies.c.sender_id)
            .where(func.lower(senders.c.email) == d.sender)
        )
        q = q.where(messages.c.id.in_(theirs))
    return [(int(r[0]), float(r[1])) for r in conn.execute(q.order_by(messages.c.id).limit(limit))]


# --- firing --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    fired: list[Event]
    cancelled: list[tuple[int, str]]  # (reminder id, why)


def fire_due(engine: Engine, hooks: Sequence[TxHook], now: float, limit: int = 100) -> Outcome:
    """Fire (or cancel, when the awaited event came) the reminders due by ``now``."""
    # A read first (ix_reminders_due): most rounds find nothing due and then
    # take no write lock (on SQLite the recorder's only writer lock).
    with engine.connect() as conn:
        due_any = conn.execute(
            select(reminders.c.id)
            .where(reminders.c.state == "pending", reminders.c.due_at <= now)
            .limit(1)
        ).first()
    if due_any is None:
        return Outcome([], [])
    pg = not is_sqlite(engine)
    mark = placeholder(engine)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        begin_write(cur, not pg)
        lock = " FOR UPDATE OF r SKIP LOCKED" if pg else ""
        cur.execute(
            "SELECT r.id, r.message_id, r.condition, r.after, s.opened_at, "
            "s.first_human_click_at, s.replies FROM reminders r "
            "LEFT JOIN message_stats s ON s.message_id = r.message_id "
            f"WHERE r.state = 'pending' AND r.due_at <= {mark} ORDER BY r.due_at, r.id "
            f"LIMIT {int(limit)}{lock}",
            (now,),
        )
        due = cur.fetchall()
        fired: list[Event] = []
        cancelled: list[tuple[int, str]] = []
        for rid, mid, condition, after, opened_at, clicked_at, replies in due:
            why = _met(condition, opened_at, clicked_at, replies)
            if why is not None:
                cur.execute(
                    f"UPDATE reminders SET state = 'cancelled', reason = {mark}, done_at = {mark} "
                    f"WHERE id = {mark} AND state = 'pending'",
                    (why, now, rid),
                )
                cancelled.append((int(rid), why))
                continue
            event = Event(
                message_id=int(mid), kind=Kind.REMINDER, at=now, method="TIMER", ip="",
                user_agent="", headers={"reminder_id": str(rid), "after": after},
                label=condition, reasons=[f"after:{after}"],
            )  # fmt: skip
            sql = event_store.insert_sql(engine)
            if pg:
                cur.execute(sql + " RETURNING id", event_store.row(event))
                row = cur.fetchone()
                assert row is not None
                event.id = int(row[0])
            else:
                cur.execute(sql, event_store.row(event))
                event.id = int(cur.lastrowid)
            cur.execute(
                f"UPDATE reminders SET state = 'fired', event_id = {mark}, done_at = {mark} "
                f"WHERE id = {mark} AND state = 'pending'",
                (event.id, now, rid),
            )
            fired.append(event)
        if fired:
            for hook in hooks:
                hook(cur, mark, pg, fired, [])
        raw.commit()
        cur.close()
        return Outcome(fired, cancelled)
    except Exception:
        raw.rollback()
        raise
    finally:
        raw.close()


def _met(
    condition: str, opened_at: float | None, clicked_at: float | None, replies: int | None
) -> str | None:
    if condition == "not_opened" and opened_at is not None:
        return "opened"
    if condition == "not_clicked" and clicked_at is not None:
        return "clicked"
    if condition == "not_replied" and replies:
        return "replied"
    return None


def targets(
    conn: Connection, message_id: int | None, campaign_id: int | None
) -> list[tuple[int, float | None]]:
    """(id, sent_at) of one message or of every message of a campaign, by id;
    LookupError naming what does not exist."""
    if message_id is not None:
        q = select(messages.c.id, messages.c.sent_at).where(messages.c.id == message_id)
        found = conn.execute(q).all()
        if not found:
            raise LookupError(f"message {message_id} does not exist")
    else:
        if (
            conn.execute(select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
            is None
        ):
            raise LookupError(f"campaign {campaign_id} does not exist")
        q = select(messages.c.id, messages.c.sent_at).where(messages.c.campaign_id == campaign_id)
        found = conn.execute(q.order_by(messages.c.id)).all()
    return [(int(mid), sent_at) for mid, sent_at in found]
