"""The relay's outgoing queue: submissions stored once, one row per copy.

A submission that went out whole during the SMTP session is still written
(its copies as ``sent``, without ``data``): the queue doubles as the log of
what left, which the rate limit counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    update,
)

from mailbeacon.store.db import is_sqlite, placeholder, write_cursor
from mailbeacon.store.messages import add_counter, campaign_id_of, insert_messages
from mailbeacon.store.schema import (
    links,
    message_stats,
    messages,
    relay_copies,
    relay_submissions,
)

# A claimed copy is one node's until its lease ends; the node renews it while
# it sends (extend_lease), so a node that dies mid-send frees its copies one
# lease later (the recipient may then get that copy twice: at least once).
LEASE_SECONDS = 90.0


@dataclass(frozen=True)
class Outcome:
    """What became of one copy during the session."""

    recipient: str
    message_id: int | None
    status: str  # "sent" | "pending" | "failed"
    at: float | None = None  # when the upstream accepted it (sent)
    code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Claimed:
    id: int
    submission_id: int
    sender_id: int
    message_id: int | None
    recipient: str
    attempts: int  # including this one
    created_at: float


@dataclass(frozen=True)
class Submission:
    id: int
    sender_id: int
    kind: str
    mail_from: str
    mail_options: tuple[str, ...]
    track: str
    message_id_header: str | None
    headers: bytes
    data: bytes | None
    created_at: float


def create_copies(
    engine: Engine,
    recipients: Sequence[str],
    *,
    subject: str | None,
    campaign: str | None,
    message_id_header: str,
    links_of: Callable[[int], Sequence[tuple[int, str]]] | None = None,
) -> tuple[list[int], int | None]:
    """One message per recipient of a submission, each with the Message-ID
    header every copy carries, in the campaign named ``campaign`` (created
    when new), in one transaction: their ids in the order of ``recipients``,
    and the campaign's id. ``links_of(first id)`` gives the links, at the
    same positions in every copy (only modes that track clicks have any).

    On SQLite the commit does not wait for the disk: the relay's next commit
    (``record``, or ``forget_messages``) does, before the client is answered,
    and ids it may lose to a power failure are never handed out again
    (messages.skip_unsure_ids)."""
    m = placeholder(engine)
    with write_cursor(engine, wait_for_disk=False) as cur:
        cid = campaign_id_of(cur, m, campaign) if campaign else None
        ids = insert_messages(
            cur, m, recipients, subject=subject, campaign_id=cid,
            message_id_header=message_id_header,
        )  # fmt: skip
        copy_links = links_of(ids[0]) if links_of is not None and ids else []
        if copy_links:
            cur.executemany(
                f"INSERT INTO links (message_id, position, url) VALUES ({m}, {m}, {m})",
                [(mid, p, u) for mid in ids for p, u in copy_links],
            )
    return ids, cid


def forget_messages(engine: Engine, message_ids: Sequence[int], campaign_id: int | None) -> None:
    """Undo messages created for a submission the client must send again (the
    upstream said "later" before taking any copy): its retry makes new ones."""
    if not message_ids:
        return
    with engine.begin() as conn:
        conn.execute(delete(links).where(links.c.message_id.in_(message_ids)))
        conn.execute(delete(message_stats).where(message_stats.c.message_id.in_(message_ids)))
        conn.execute(delete(messages).where(messages.c.id.in_(message_ids)))
        add_counter(conn, campaign_id or 0, "unique", "messages", -len(message_ids))


# The second transaction of every relayed message, in SQL on the driver's
# cursor: SQLAlchemy's Connection, compiling and binding took ~0.3 ms of CPU
# per 3-recipient message, more than the driver's own work ("?" or "%s").
_NEW_SUBMISSION_SQL = (
    "INSERT INTO relay_submissions (sender_id, kind, mail_from, mail_options, track, "
    "message_id_header, headers, data, size, created_at) "
    "VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}) RETURNING id"
)
_NEW_COPY_SQL = (
    "INSERT INTO relay_copies (submission_id, sender_id, message_id, recipient, status, "
    "attempts, created_at, next_at, sent_at, last_code, last_error) "
    "VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})"
)
_SENT_AT_SQL = (
    "UPDATE messages SET sent_at = {m} WHERE id = {m}",
    "UPDATE message_stats SET sent_at = {m} WHERE message_id = {m}",
)


def _set_sent_at(cur: Any, mark: str, sent: Sequence[tuple[float, int]]) -> None:
    """``sent_at`` of each (when, message id) on a DB-API cursor: two
    executemany statements (the submission's commit and the queue's)."""
    if sent:
        for sql in _SENT_AT_SQL:
            cur.executemany(sql.format(m=mark), sent)


def record(
    engine: Engine,
    *,
    sender_id: int,
    kind: str,
    mail_from: str,
    mail_options: Sequence[str],
    track: str,
    message_id_header: str | None,
    headers: bytes,
    data: bytes,
    outcomes: Sequence[Outcome],
    next_at: float,
) -> int:
    """Write a submission and its copies in one transaction; ``data`` is kept
    only when some copy is still pending. Sent copies get their ``sent_at``."""
    now = time.time()
    pending = any(o.status == "pending" for o in outcomes)
    m = placeholder(engine)
    sent = [
        (o.at, o.message_id)
        for o in outcomes
        if o.status == "sent" and o.message_id is not None and o.at is not None
    ]
    with write_cursor(engine) as cur:
        cur.execute(
            _NEW_SUBMISSION_SQL.format(m=m),
            (sender_id, kind, mail_from, " ".join(mail_options), track, message_id_header,
             headers, data if pending else None, len(data), now),
        )  # fmt: skip
        sid = int(cur.fetchone()[0])
        cur.executemany(
            _NEW_COPY_SQL.format(m=m),
            [
                (sid, sender_id, o.message_id, o.recipient, o.status,
                 0 if o.status == "pending" else 1, now,
                 next_at if o.status == "pending" else None, o.at, o.code, o.error)
                for o in outcomes
            ],
        )  # fmt: skip
        _set_sent_at(cur, m, sent)
    return sid


def claim(
    engine: Engine, limit: int, now: float | None = None, lease: float = LEASE_SECONDS
) -> list[Claimed]:
    """Take up to ``limit`` due copies for this node.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets every node claim at once and
    never hands one copy to two of them; the lease (``locked_until``) keeps
    it claimed after the transaction. SQLite has one writer: the UPDATE is atomic.
    """
    now = now if now is not None else time.time()
    lock = "" if is_sqlite(engine) else " FOR UPDATE SKIP LOCKED"
    sql = text(
        "UPDATE relay_copies SET locked_until = :until, attempts = attempts + 1 WHERE id IN ("
        "SELECT id FROM relay_copies WHERE status = 'pending' AND next_at <= :now "
        "AND (locked_until IS NULL OR locked_until < :now) ORDER BY next_at, id LIMIT :n"
        f"{lock}) RETURNING id, submission_id, sender_id, message_id, recipient, attempts, "
        "created_at"
    )
    with engine.begin() as conn:
        rows = conn.execute(sql, {"until": now + lease, "now": now, "n": limit}).all()
    return sorted((Claimed(*r) for r in rows), key=lambda c: (c.submission_id, c.id))


def extend_lease(
    engine: Engine, ids: Sequence[int], lease: float = LEASE_SECONDS, now: float | None = None
) -> int:
    """Keep the copies still being sent claimed for another ``lease`` seconds
    (those already finished have no lease and stay as they are)."""
    until = (now if now is not None else time.time()) + lease
    with engine.begin() as conn:
        result = conn.execute(
            update(relay_copies)
            .where(
                relay_copies.c.id.in_(list(ids)),
                relay_copies.c.status == "pending",
                relay_copies.c.locked_until.is_not(None),
            )
            .values(locked_until=until)
        )
    return int(result.rowcount or 0)


def submission(engine: Engine, submission_id: int) -> Submission | None:
    with engine.connect() as conn:
        r = conn.execute(
            select(relay_submissions).where(relay_submissions.c.id == submission_id)
        ).first()
    if r is None:
        return None
    m = r._mapping
    return Submission(
        id=m["id"],
        sender_id=m["sender_id"],
        kind=m["kind"],
        mail_from=m["mail_from"],
        mail_options=tuple(m["mail_options"].split()),
        track=m["track"],
        message_id_header=m["message_id_header"],
        headers=bytes(m["headers"]),
        data=bytes(m["data"]) if m["data"] is not None else None,
        created_at=m["created_at"],
    )


def finish(
    engine: Engine,
    copy: Claimed,
    *,
    status: str,
    code: int | None,
    error: str | None,
    at: float | None = None,
    next_at: float | None = None,
) -> None:
    """Record one attempt: ``sent`` (at ``at``), ``pending`` again (retry at
    ``next_at``) or ``failed``. The submission's data goes once no copy needs it."""
    values: dict[str, Any] = {
        "status": status,
        "last_code": code,
        "last_error": error,
        "locked_until": None,
    }
    if status == "sent":
        values["sent_at"] = at
    if status == "pending":
        values["next_at"] = next_at
    with engine.begin() as conn:
        conn.execute(update(relay_copies).where(relay_copies.c.id == copy.id).values(**values))
        if status == "sent" and copy.message_id is not None and at is not None:
            cur = conn.connection.cursor()
            try:
                _set_sent_at(cur, placeholder(engine), [(at, copy.message_id)])
            finally:
                cur.close()
        if status != "pending":
            still = select(relay_copies.c.id).where(
                relay_copies.c.submission_id == copy.submission_id,
                relay_copies.c.status == "pending",
            )
            conn.execute(
                update(relay_submissions)
                .where(relay_submissions.c.id == copy.submission_id, ~still.exists())
                .values(data=None)
            )


def copies_since(engine: Engine, sender_id: int, since: float) -> int:
    """Copies this sender submitted since ``since`` (the rate limit reads it)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(relay_copies)
                .join(relay_submissions, relay_submissions.c.id == relay_copies.c.submission_id)
                .where(
                    relay_copies.c.sender_id == sender_id,
                    relay_copies.c.created_at >= since,
                    relay_submissions.c.kind == "mail",
                )
            ).scalar_one()
        )


# A copy's state in the words the dashboard and the CLI use: queued (not yet
# retried from the queue), retrying, sent, bounced (the upstream refused it
# for good: 5xx) or given up (still "later" after relay_max_age, or its
# submission was gone). STATES says it in SQL, so a filtered page is as full
# as an unfiltered one; state_of() says it of one row of copies().
_FAILED = relay_copies.c.status == "failed"
_BOUNCED = relay_copies.c.last_code.between(500, 599)
STATES: dict[str, ColumnElement[bool]] = {
    "queued": and_(relay_copies.c.status == "pending", relay_copies.c.attempts == 0),
    "retrying": and_(relay_copies.c.status == "pending", relay_copies.c.attempts > 0),
    "sent": relay_copies.c.status == "sent",
    "bounced": and_(_FAILED, _BOUNCED),
    "given up": and_(_FAILED, or_(relay_copies.c.last_code.is_(None), ~_BOUNCED)),
}


def state_of(row: dict[str, Any]) -> str:
    """One row of ``copies()`` in the words of ``STATES``."""
    if row["status"] == "sent":
        return "sent"
    if row["status"] == "pending":
        return "retrying" if int(row.get("attempts") or 0) else "queued"
    code = row.get("last_code")
    return "bounced" if code is not None and 500 <= int(code) < 600 else "given up"


def copies(
    engine: Engine,
    *,
    status: str | None = None,
    sender_id: int | None = None,
    limit: int = 50,
    before: int | None = None,
    state: str | None = None,
) -> list[dict[str, Any]]:
    """The newest copies with their state (the CLI's and dashboard's queue view),
    each with its message's subject (None for a bounce report, which has no message).
    ``before``: only copies with a smaller id (the next page's cursor: the
    last id shown; ids only grow). ``state``: one of ``STATES``."""
    q = (
        select(
            relay_copies,
            relay_submissions.c.kind,
            relay_submissions.c.message_id_header,
            messages.c.subject,
        )
        .join(relay_submissions, relay_submissions.c.id == relay_copies.c.submission_id)
        .outerjoin(messages, messages.c.id == relay_copies.c.message_id)
        .order_by(relay_copies.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        q = q.where(relay_copies.c.status == status)
    if state is not None:
        q = q.where(STATES[state])
    if sender_id is not None:
        q = q.where(relay_copies.c.sender_id == sender_id)
    if before is not None:
        q = q.where(relay_copies.c.id < before)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).all()]


def waiting_by_sender(engine: Engine) -> dict[int, int]:
    """How many copies each sender has still waiting in the queue (the senders list)."""
    q = (
        select(relay_copies.c.sender_id, func.count())
        .where(relay_copies.c.status == "pending")
        .group_by(relay_copies.c.sender_id)
    )
    with engine.connect() as conn:
        return {int(sid): int(n) for sid, n in conn.execute(q).all()}
