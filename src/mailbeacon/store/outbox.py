"""Webhook subscriptions and the outbox: claiming, finishing, the delivery log."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, text, update

from mailbeacon.store.db import is_sqlite
from mailbeacon.store.schema import outbox, webhooks

SECRET_PREFIX = "whsec_"
# A claimed row is someone's for this long; a node that dies mid-delivery
# frees its rows after it (the receiver gets that delivery again: at least once).
CLAIM_SECONDS = 60.0
BACKOFF_CAP = 3600.0  # retries settle at once an hour


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    webhook_id: int | None
    target: str | None
    event_type: str
    event_id: int
    message_id: int
    created_at: float
    attempts: int  # including this one
    payload: str | None
    replay_of: int | None


# --- webhooks -----------------------------------------------------------------


def create_webhook(engine: Engine, url: str, events: list[str]) -> dict[str, Any]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    with engine.begin() as conn:
        wid = conn.execute(
            insert(webhooks)
            .values(url=url, events=",".join(events), secret=secret, created_at=now)
            .returning(webhooks.c.id)
        ).scalar_one()
    return {"id": wid, "url": url, "events": events, "secret": secret, "created_at": now}


def _webhook(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": [e for e in row.events.split(",") if e],
        "secret_prefix": row.secret[: len(SECRET_PREFIX) + 4],
        "created_at": row.created_at,
    }


def list_webhooks(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(webhooks).where(webhooks.c.deleted_at.is_(None)).order_by(webhooks.c.id)
        ).all()
    return [_webhook(r) for r in rows]


def get_webhook(engine: Engine, wid: int, *, deleted: bool = False) -> dict[str, Any] | None:
    q = select(webhooks).where(webhooks.c.id == wid)
    if not deleted:
        q = q.where(webhooks.c.deleted_at.is_(None))
    with engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        return None
    return {**_webhook(row), "secret": row.secret, "deleted_at": row.deleted_at}


def delete_webhook(engine: Engine, wid: int) -> bool:
    """Soft delete: its delivery log stays readable; pending deliveries are dropped."""
    now = time.time()
    with engine.begin() as conn:
        done = conn.execute(
            update(webhooks)
            .where(webhooks.c.id == wid, webhooks.c.deleted_at.is_(None))
            .values(deleted_at=now)
        ).rowcount
        conn.execute(
            update(outbox)
            .where(outbox.c.webhook_id == wid, outbox.c.status == "pending")
            .values(status="cancelled", last_error="webhook deleted", locked_until=None)
        )
    return bool(done)


# --- the outbox -----------------------------------------------------------------


def backoff(base: float, attempts: int) -> float:
    """Seconds before the next try: base, 2x, 4x ... capped at an hour, +-20% jitter
    so a receiver coming back is not hit by every node's retries in the same second."""
    delay = min(base * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * random.uniform(0.8, 1.2)


# One queue per receiver: a webhook ("webhook", its id) or the email channel
# ("email", None). The worker claims per receiver so one slow receiver's
# backlog never fills the slots another receiver needs (notify/worker.py).
Receiver = tuple[str, int | None]

_DUE = "status = 'pending' AND next_at <= :now AND (locked_until IS NULL OR locked_until < :now)"


def due_receivers(engine: Engine, now: float | None = None) -> list[Receiver]:
    """Receivers with at least one delivery due now (a read: no write lock)."""
    now = now if now is not None else time.time()
    sql = text(f"SELECT channel, webhook_id FROM outbox WHERE {_DUE} GROUP BY channel, webhook_id")
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(sql, {"now": now}).all()]


def claim(
    engine: Engine,
    limit: int = 20,
    now: float | None = None,
    receiver: Receiver | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due rows (of one receiver, if given) for this worker.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets every node claim at once without
    taking the same row twice. SQLite: one process writes; the UPDATE is atomic.
    """
    now = now if now is not None else time.time()
    pg = not is_sqlite(engine)
    lock = " FOR UPDATE SKIP LOCKED" if pg else ""
    params: dict[str, Any] = {"until": now + CLAIM_SECONDS, "now": now, "n": limit}
    only = ""
    if receiver is not None:
        params["channel"], params["webhook_id"] = receiver
        only = " AND channel = :channel AND " + (
            "webhook_id IS NULL" if receiver[1] is None else "webhook_id = :webhook_id"
        )
    sql = text(
        "UPDATE outbox SET locked_until = :until, attempts = attempts + 1 WHERE id IN ("
        f"SELECT id FROM outbox WHERE {_DUE}{only} ORDER BY next_at, id LIMIT :n"
        f"{lock}) RETURNING id, channel, webhook_id, target, event_type, event_id, "
        "message_id, created_at, attempts, payload, replay_of"
    )
    with engine.begin() as conn:
        rows = conn.execute(sql, params).all()
    return sorted((Claimed(*r) for r in rows), key=lambda c: c.id)


def save_payload(engine: Engine, did: int, payload: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == did).values(payload=payload))


def finish(
    engine: Engine,
    row: Claimed,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    base: float,
    max_age: float,
    final: str | None = None,
) -> None:
    """Record one attempt: delivered, retry later, or (too old / ``final``) give up."""
    now = time.time()
    values: dict[str, Any] = {"last_status": status, "last_error": error, "locked_until": None}
    if ok:
        values.update(status="delivered", delivered_at=now)
    elif final is not None or now - row.created_at > max_age:
        values.update(status=final or "failed")
    else:
        values.update(next_at=now + backoff(base, row.attempts))
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))


def replay(engine: Engine, did: int) -> int | None:
    """Send a delivery again as a new delivery (new id, ``replay_of`` the old one)."""
    now = time.time()
    with engine.begin() as conn:
        old = conn.execute(select(outbox).where(outbox.c.id == did)).first()
        if old is None:
            return None
        body = None
        if old.payload:
            data = json.loads(old.payload)
            data["replay_of"] = old.id
            body = data
        new_id = conn.execute(
            insert(outbox)
            .values(
                channel=old.channel,
                webhook_id=old.webhook_id,
                target=old.target,
                event_type=old.event_type,
                event_id=old.event_id,
                message_id=old.message_id,
                created_at=now,
                next_at=now,
                attempts=0,
                status="pending",
                replay_of=old.id,
            )
            .returning(outbox.c.id)
        ).scalar_one()
        if body is not None:
            body["id"] = new_id
            conn.execute(
                update(outbox)
                .where(outbox.c.id == new_id)
                .values(payload=json.dumps(body, separators=(",", ":")))
            )
    return int(new_id)


def deliveries(
    engine: Engine, *, webhook_id: int | None = None, channel: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    q = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if webhook_id is not None:
        q = q.where(outbox.c.webhook_id == webhook_id)
    if channel is not None:
        q = q.where(outbox.c.channel == channel)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [delivery_public(r._mapping) for r in rows]


def get_delivery(engine: Engine, did: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == did)).first()
    return delivery_public(row._mapping) if row else None


def delivery_public(m: Any) -> dict[str, Any]:
    from mailbeacon.timefmt import iso

    return {
        "id": m["id"],
        "channel": m["channel"],
        "webhook_id": m["webhook_id"],
        "event_type": m["event_type"],
        "event_id": m["event_id"],
        "message_id": m["message_id"],
        "status": m["status"],
        "attempts": m["attempts"],
        "created_at": iso(m["created_at"]),
        "next_at": iso(m["next_at"]) if m["status"] == "pending" else None,
        "delivered_at": iso(m["delivered_at"]),
        "last_status": m["last_status"],
        "last_error": m["last_error"],
        "replay_of": m["replay_of"],
    }


# --- written by the recorder's hook, in the batch's transaction (notify/hook.py)
# Rows are (event_id, message_id, event_type); raw cursor, ``mark`` placeholder.


def any_webhook(cur: Any) -> bool:
    cur.execute("SELECT 1 FROM webhooks WHERE deleted_at IS NULL LIMIT 1")
    return cur.fetchone() is not None


def fan_out(
    cur: Any, mark: str, items: Sequence[tuple[int | None, int, str]], now: float, due: float
) -> None:
    """One outbox row per subscribed webhook per event, in one INSERT ... SELECT."""
    m = mark
    cur.executemany(
        "INSERT INTO outbox (channel, webhook_id, event_type, event_id, message_id, "
        "created_at, next_at, attempts, status) "
        f"SELECT 'webhook', id, CAST({m} AS VARCHAR(32)), CAST({m} AS BIGINT), "
        f"CAST({m} AS BIGINT), CAST({m} AS FLOAT), CAST({m} AS FLOAT), 0, 'pending' "
        f"FROM webhooks WHERE deleted_at IS NULL AND (',' || events || ',') LIKE {m}",
        [(t, eid, mid, now, due, f"%,{t},%") for eid, mid, t in items],
    )


def queue_emails(
    cur: Any,
    mark: str,
    target: str,
    items: Sequence[tuple[int | None, int, str]],
    now: float,
    due: float,
) -> None:
    m = mark
    cur.executemany(
        "INSERT INTO outbox (channel, target, event_type, event_id, message_id, "
        f"created_at, next_at, attempts, status) VALUES ('email', {m}, "
        f"{m}, {m}, {m}, {m}, {m}, 0, 'pending')",
        [(target, t, eid, mid, now, due) for eid, mid, t in items],
    )
