"""Watched mailboxes (SQL only): the rows, their lease, and what the watcher
looks up to match a reply (tracked Message-IDs, recipients, replies already
recorded). The IMAP side is in ``mailbeacon/mailboxes/``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from mailbeacon.model import Kind
from mailbeacon.store.schema import events, mailboxes, messages

# SQLite and PostgreSQL both take at least 999 bound parameters a statement.
CHUNK = 500


@dataclass(frozen=True)
class Mailbox:
    id: int
    email: str
    imap_url: str  # without its password
    imap_secret: str | None  # sealed
    folder: str
    state: str
    last_check_at: float | None
    last_error: str | None
    failures: int
    next_try_at: float | None
    uidvalidity: int | None
    last_uid: int | None
    lease_owner: str | None
    lease_until: float | None
    updated_at: float


@dataclass(frozen=True)
class Tracked:
    """A tracked message as matching needs it."""

    id: int
    recipient: str  # lowercased
    subject: str | None
    sent_at: float | None
    message_id_header: str | None


def _mailbox(row: Any) -> Mailbox:
    m = row._mapping
    return Mailbox(**{f: m[f] for f in Mailbox.__dataclass_fields__})


def upsert(engine: Engine, email: str, imap_url: str, sealed: str | None) -> tuple[int, bool]:
    """Add the mailbox, or replace its URL and password (a fresh start: the
    state and backoff are reset, what was already read stays read).
    Returns (id, created)."""
    now = time.time()
    fresh = {
        "imap_url": imap_url,
        "imap_secret": sealed,
        "state": "new",
        "last_error": None,
        "failures": 0,
        "next_try_at": None,
        "updated_at": now,
    }
    with engine.begin() as conn:
        found = conn.execute(select(mailboxes.c.id).where(mailboxes.c.email == email)).scalar()
        if found is not None:
            conn.execute(update(mailboxes).where(mailboxes.c.id == found).values(**fresh))
            return int(found), False
        mid = conn.execute(
            insert(mailboxes).values(email=email, created_at=now, **fresh).returning(mailboxes.c.id)
        ).scalar_one()
    return int(mid), True


def all_mailboxes(engine: Engine) -> list[Mailbox]:
    with engine.connect() as conn:
        rows = conn.execute(select(mailboxes).order_by(mailboxes.c.email)).all()
    return [_mailbox(r) for r in rows]


def get(engine: Engine, email: str) -> Mailbox | None:
    with engine.connect() as conn:
        row = conn.execute(select(mailboxes).where(mailboxes.c.email == email)).first()
    return _mailbox(row) if row else None


def remove(engine: Engine, email: str) -> bool:
    with engine.begin() as conn:
        return bool(conn.execute(delete(mailboxes).where(mailboxes.c.email == email)).rowcount)


# --- the lease: one node watches a mailbox ------------------------------------


def take_lease(engine: Engine, mailbox_id: int, owner: str, seconds: float, now: float) -> bool:
    """Take or renew the lease; False when another node holds a live one.

    One conditional UPDATE: two nodes racing for a free mailbox cannot both
    see their row changed (PostgreSQL re-checks the WHERE on the row it
    locks; SQLite has one writer)."""
    with engine.begin() as conn:
        n = conn.execute(
            update(mailboxes)
            .where(
                mailboxes.c.id == mailbox_id,
                or_(
                    mailboxes.c.lease_owner.is_(None),
                    mailboxes.c.lease_owner == owner,
                    mailboxes.c.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=now + seconds)
        ).rowcount
    return bool(n)


def release_lease(engine: Engine, mailbox_id: int, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id, mailboxes.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


# --- what the watcher writes -------------------------------------------------


def checked(
    engine: Engine,
    mailbox_id: int,
    owner: str,
    *,
    uidvalidity: int,
    last_uid: int,
    now: float,
) -> bool:
    """A check went through: state ok, the UID checkpoint moves on. False
    (nothing written) when this node no longer holds the lease."""
    with engine.begin() as conn:
        n = conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id, mailboxes.c.lease_owner == owner)
            .values(
                state="ok",
                last_check_at=now,
                last_error=None,
                failures=0,
                next_try_at=None,
                uidvalidity=uidvalidity,
                last_uid=last_uid,
            )
        ).rowcount
    return bool(n)


def failed(engine: Engine, mailbox_id: int, error: str, next_try_at: float, now: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id)
            .values(
                state="failing",
                last_check_at=now,
                last_error=error,
                failures=mailboxes.c.failures + 1,
                next_try_at=next_try_at,
            )
        )


# --- what matching reads -----------------------------------------------------


def _tracked(row: Any) -> Tracked:
    return Tracked(
        id=int(row.id),
        recipient=(row.recipient or "").lower(),
        subject=row.subject,
        sent_at=row.sent_at,
        message_id_header=row.message_id_header,
    )


_TRACKED_COLS = (
    messages.c.id,
    messages.c.recipient,
    messages.c.subject,
    messages.c.sent_at,
    messages.c.message_id_header,
)


def by_message_id_header(conn: Connection, ids: Iterable[str]) -> list[Tracked]:
    """Tracked messages whose Message-ID is one of ``ids`` (several copies
    of one submission share it)."""
    wanted = sorted(set(ids))
    out: list[Tracked] = []
    for i in range(0, len(wanted), CHUNK):
        part = wanted[i : i + CHUNK]
        rows = conn.execute(
            select(*_TRACKED_COLS)
            .where(messages.c.message_id_header.in_(part))
            .order_by(messages.c.id)
        ).all()
        out += [_tracked(r) for r in rows]
    return out


def by_recipient(conn: Connection, addresses: Iterable[str], since: float) -> list[Tracked]:
    """Messages to ``addresses`` sent (or made) since ``since``: the fallback's candidates."""
    wanted = sorted({a.lower() for a in addresses})
    out: list[Tracked] = []
    for i in range(0, len(wanted), CHUNK):
        part = wanted[i : i + CHUNK]
        rows = conn.execute(
            select(*_TRACKED_COLS)
            .where(
                func.lower(messages.c.recipient).in_(part),
                or_(
                    messages.c.sent_at >= since,
                    and_(messages.c.sent_at.is_(None), messages.c.created_at >= since),
                ),
            )
            .order_by(messages.c.id)
        ).all()
        out += [_tracked(r) for r in rows]
    return out


def sent_since(conn: Connection, since: float) -> list[Tracked]:
    """Messages sent (or made) since ``since``: what a first look at a mailbox searches for."""
    rows = conn.execute(
        select(*_TRACKED_COLS)
        .where(
            or_(
                messages.c.sent_at >= since,
                and_(messages.c.sent_at.is_(None), messages.c.created_at >= since),
            )
        )
        .order_by(messages.c.id)
    ).all()
    return [_tracked(r) for r in rows]


def recorded_replies(conn: Connection, message_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(message id, reply hash) of the replies already recorded for these messages.

    The hash lives in the event's ``headers`` JSON (``reply_id``); a message
    has a handful of replies, read through ``ix_events_message``."""
    found: set[tuple[int, str]] = set()
    ids = sorted(set(message_ids))
    for i in range(0, len(ids), CHUNK):
        rows = conn.execute(
            select(events.c.message_id, events.c.headers).where(
                events.c.message_id.in_(ids[i : i + CHUNK]), events.c.kind == Kind.REPLY.value
            )
        ).all()
        for mid, headers in rows:
            rid = json.loads(headers or "{}").get("reply_id")
            if rid:
                found.add((int(mid), str(rid)))
    return found
