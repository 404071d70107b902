"""Senders: the accounts that submit mail through the relay (SQL only; the
password and URL handling is in relay/accounts.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mailbeacon.store.db import WriterTurn, is_sqlite, pg_session_lock
from mailbeacon.store.schema import senders

TRACK_MODES = ("off", "opens", "clicks", "all")


class SenderExists(ValueError):
    pass


# pg_advisory_lock key for "who owns which From address" (any fixed number
# no other lock of ours uses): "mbad".
_ADDRESSES_LOCK = 0x6D626164


@contextmanager
def addresses_locked(engine: Engine) -> Iterator[None]:
    """Check who owns an address and give it to a sender, one process at a time.

    An address has one owner (the relay lets a login send as each of its
    addresses), but the check and the write are two statements: without
    this, two admins giving one address to two senders at once could both
    pass the check. SQLite: the file's writer turn (an flock every writer of
    the file takes, across processes); PostgreSQL: a session advisory lock,
    let go at the end (or by the server if the connection dies). Inside,
    write with ordinary transactions (never with a WriterTurn of your own).
    """
    if is_sqlite(engine):
        turn = WriterTurn(engine)
        try:
            with turn:
                yield
        finally:
            turn.close()
        return
    with engine.connect() as conn, pg_session_lock(conn, _ADDRESSES_LOCK):
        yield


@dataclass(frozen=True)
class Sender:
    id: int
    email: str
    password_hash: str
    upstream: str  # without its password
    upstream_secret: str | None  # sealed
    track: str
    also: tuple[str, ...]
    rate_per_hour: int | None
    created_at: float

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address this login may send as (envelope sender and From:)."""
        return (self.email, *self.also)


def _sender(row: object) -> Sender:
    m = row._mapping  # type: ignore[attr-defined]
    return Sender(
        id=int(m["id"]),
        email=m["email"],
        password_hash=m["password_hash"],
        upstream=m["upstream"],
        upstream_secret=m["upstream_secret"],
        track=m["track"],
        also=tuple(a for a in m["also"].split(",") if a),
        rate_per_hour=m["rate_per_hour"],
        created_at=m["created_at"],
    )


def create(
    engine: Engine,
    *,
    email: str,
    password_hash: str,
    upstream: str,
    upstream_secret: str | None,
    track: str = "opens",
) -> int:
    try:
        with engine.begin() as conn:
            return int(
                conn.execute(
                    insert(senders)
                    .values(
                        email=email,
                        password_hash=password_hash,
                        upstream=upstream,
                        upstream_secret=upstream_secret,
                        track=track,
                        created_at=time.time(),
                    )
                    .returning(senders.c.id)
                ).scalar_one()
            )
    except IntegrityError:
        raise SenderExists(
            f"a sender {email} already exists; see `mailbeacon senders list`"
        ) from None


def by_email(engine: Engine, email: str) -> Sender | None:
    with engine.connect() as conn:
        row = conn.execute(select(senders).where(senders.c.email == email)).first()
    return _sender(row) if row else None


def by_id(engine: Engine, sender_id: int) -> Sender | None:
    with engine.connect() as conn:
        row = conn.execute(select(senders).where(senders.c.id == sender_id)).first()
    return _sender(row) if row else None


def using(engine: Engine, address: str) -> Sender | None:
    """The sender that may send as ``address``: its login or one of its
    extra From addresses (``also`` is comma-separated, so LIKE narrows and
    the exact match is made here)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(senders)
            .where(or_(senders.c.email == address, senders.c.also.contains(address)))
            .order_by(senders.c.id)
        ).all()
    return next((s for s in map(_sender, rows) if address in s.addresses), None)


def all_senders(engine: Engine) -> list[Sender]:
    with engine.connect() as conn:
        return [_sender(r) for r in conn.execute(select(senders).order_by(senders.c.id)).all()]


def has_secrets(engine: Engine) -> bool:
    with engine.connect() as conn:
        q = select(senders.c.id).where(senders.c.upstream_secret.is_not(None)).limit(1)
        return conn.execute(q).first() is not None


def change(engine: Engine, email: str, **values: object) -> bool:
    """Update the given columns of one sender; False when there is none."""
    with engine.begin() as conn:
        n = conn.execute(
            update(senders).where(senders.c.email == email).values(**values, updated_at=time.time())
        ).rowcount
    return bool(n)


def remove(engine: Engine, email: str) -> bool:
    """Delete the sender; its queued copies go with it (ON DELETE CASCADE):
    without the upstream credentials they could never be sent."""
    with engine.begin() as conn:
        return bool(conn.execute(delete(senders).where(senders.c.email == email)).rowcount)
