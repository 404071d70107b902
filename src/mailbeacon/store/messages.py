"""Campaigns, messages and their links."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from mailbeacon.model import MessageInfo
from mailbeacon.store import rollups
from mailbeacon.store.db import is_sqlite, placeholder
from mailbeacon.store.schema import (
    campaigns,
    counters,
    links,
    message_stats,
    messages,
    optouts,
)
from mailbeacon.timefmt import iso


class Conflict(ValueError):
    pass


# The longest campaign name the column holds (String(200)): every path that
# names a campaign (API, CLI, relay header) is held to it.
CAMPAIGN_NAME_MAX: int = campaigns.c.name.type.length  # type: ignore[attr-defined]


def create_campaign(conn: Connection, name: str) -> dict[str, Any]:
    now = time.time()
    try:
        with conn.begin_nested():
            cid = conn.execute(
                insert(campaigns).values(name=name, created_at=now).returning(campaigns.c.id)
            ).scalar_one()
    except IntegrityError:
        raise Conflict(f"a campaign named {name!r} already exists") from None
    return {"id": cid, "name": name, "created_at": now}


def campaign_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
    return dict(row._mapping) if row else None


def get_campaign(conn: Connection, cid: int) -> dict[str, Any] | None:
    row = conn.execute(select(campaigns).where(campaigns.c.id == cid)).first()
    return dict(row._mapping) if row else None


def set_archived(conn: Connection, cid: int, archived: bool) -> dict[str, Any] | None:
    """Archive (or bring back) a campaign; None when there is no such campaign.
    Archiving only hides it from lists: its messages keep recording hits."""
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == cid)
        .values(archived_at=time.time() if archived else None)
    )
    return get_campaign(conn, cid)


def list_campaigns(conn: Connection, include_archived: bool = False) -> list[dict[str, Any]]:
    """Campaigns, newest first, with key figures read from the rollup counters
    (three primary-key lookups per campaign, never a count over messages).
    Archived campaigns only with ``include_archived``."""
    figures = {}
    for key in ("messages", "opened", "clicked"):
        figures[key] = counters.alias(f"c_{key}")
    q = select(
        campaigns,
        *[func.coalesce(t.c.n, 0).label(k) for k, t in figures.items()],
    ).select_from(campaigns)
    for key, t in figures.items():
        q = q.outerjoin(
            t, (t.c.campaign_id == campaigns.c.id) & (t.c.dim == "unique") & (t.c.key == key)
        )
    if not include_archived:
        q = q.where(campaigns.c.archived_at.is_(None))
    out = []
    for r in conn.execute(q.order_by(campaigns.c.id.desc())).all():
        row = dict(r._mapping)
        n = int(row["messages"])
        row["open_rate"] = round(row["opened"] / n, 4) if n else 0.0
        row["click_rate"] = round(row["clicked"] / n, 4) if n else 0.0
        out.append(row)
    return out


def insert_message(
    conn: Connection,
    *,
    recipient: str,
    subject: str | None,
    campaign_id: int | None,
    variant: str | None,
    sent_at: float | None,
    honeypot_position: int | None = None,
    message_id_header: str | None = None,
) -> tuple[int, float]:
    now = time.time()
    mid = conn.execute(
        insert(messages)
        .values(
            recipient=recipient,
            subject=subject,
            campaign_id=campaign_id,
            variant=variant,
            sent_at=sent_at,
            created_at=now,
            honeypot_position=honeypot_position,
            message_id_header=message_id_header,
        )
        .returning(messages.c.id)
    ).scalar_one()
    conn.execute(
        insert(message_stats).values(
            message_id=mid,
            campaign_id=campaign_id or 0,
            variant=variant or "",
            sent_at=sent_at,
            created_at=now,
        )
    )
    add_counter(conn, campaign_id or 0, "unique", "messages", 1)
    if variant:
        add_counter(conn, campaign_id or 0, "variant", f"{variant}\x1fmessages", 1)
        if subject:
            # Which subject line a variant is: the report names it beside the
            # variant's rates (counters' keys hold 200 characters).
            key = f"{variant}\x1f{subject.strip()[:150]}"
            add_counter(conn, campaign_id or 0, "subject", key, 1)
    return int(mid), now


# The relay's copies, in SQL on the driver's cursor (``mark``: "?" or "%s"):
# built, compiled and bound by SQLAlchemy these statements and the
# transaction around them took ~0.5 ms of CPU per 3-recipient message, about
# twice the driver's own time (tests/test_relay_store.py checks the rows).
_NEW_MESSAGE_SQL = (
    "INSERT INTO messages (recipient, subject, campaign_id, created_at, message_id_header) "
    "VALUES ({m}, {m}, {m}, {m}, {m}) RETURNING id"
)
_NEW_STATS_SQL = (
    "INSERT INTO message_stats (message_id, campaign_id, variant, created_at) "
    "VALUES ({m}, {m}, '', {m})"
)


def insert_messages(
    cur: Any,
    mark: str,
    recipients: Sequence[str],
    *,
    subject: str | None,
    campaign_id: int | None,
    message_id_header: str | None,
) -> list[int]:
    """``insert_message`` for several recipients of one message (the relay's
    copies: no variant, not sent yet), on a DB-API cursor's transaction; the
    ids in the order of ``recipients`` (one INSERT each: the order of a
    multi-row RETURNING is not promised)."""
    now = time.time()
    ids: list[int] = []
    sql = _NEW_MESSAGE_SQL.format(m=mark)
    for r in recipients:
        cur.execute(sql, (r, subject, campaign_id, now, message_id_header))
        ids.append(int(cur.fetchone()[0]))
    cur.executemany(_NEW_STATS_SQL.format(m=mark), [(mid, campaign_id or 0, now) for mid in ids])
    rollups.add_counts(cur, mark, {(campaign_id or 0, "unique", "messages"): len(ids)})
    return ids


# Message ids skipped at each start of a node on SQLite (skip_unsure_ids).
# Far more than can be in flight: a relay commit that did not wait for the
# disk is followed by one that does before its client is answered, so only
# the submissions being relayed at that moment (8 threads) can lose theirs.
ID_GAP = 1 << 20


def skip_unsure_ids(engine: Engine) -> None:
    """At a node's start, SQLite: move the messages' id counter (AUTOINCREMENT,
    migration 0006) past any id a power failure may have taken back.

    The relay creates a submission's messages in a commit that does not wait
    for the disk (outgoing.create_copies) and sends their copies before the
    next commit that does: lost in a power failure, those ids would be
    handed out again and the delivered copies' opens would count on someone
    else's messages. After the gap they point at no message at all. A node
    always starts after a power failure; on PostgreSQL that commit waits."""
    if not is_sqlite(engine):
        return
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE sqlite_sequence SET seq = seq + :gap WHERE name = 'messages'"),
            {"gap": ID_GAP},
        )


def campaign_id_of(cur: Any, mark: str, name: str) -> int:
    """The campaign called ``name``, created when new (resolve_campaign, on a
    DB-API cursor's transaction; a campaign made at the same moment by
    another writer is taken, not an error)."""
    cur.execute(
        f"INSERT INTO campaigns (name, created_at) VALUES ({mark}, {mark}) "
        "ON CONFLICT (name) DO NOTHING",
        (name, time.time()),
    )
    cur.execute(f"SELECT id FROM campaigns WHERE name = {mark}", (name,))
    return int(cur.fetchone()[0])


def add_counter(conn: Connection, campaign_id: int, dim: str, key: str, n: int) -> None:
    """One counter, through the same additive upsert the writer's batches use."""
    cur = conn.connection.cursor()
    try:
        rollups.add_counts(cur, placeholder(conn.engine), {(campaign_id, dim, key): n})
    finally:
        cur.close()


def insert_links(conn: Connection, message_id: int, urls: Sequence[tuple[int, str]]) -> None:
    if urls:
        conn.execute(
            insert(links), [{"message_id": message_id, "position": p, "url": u} for p, u in urls]
        )


def next_position(conn: Connection, message_id: int) -> int:
    top = conn.execute(
        select(func.max(links.c.position)).where(links.c.message_id == message_id)
    ).scalar()
    return int(top or 0) + 1


def get_message(conn: Connection, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    return dict(row._mapping) if row else None


def set_sent_at(conn: Connection, message_id: int, sent_at: float) -> bool:
    """Record when a message left the sender; False if it does not exist."""
    result = conn.execute(
        update(messages).where(messages.c.id == message_id).values(sent_at=sent_at)
    )
    return bool(result.rowcount)


def message_links(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(links.c.position, links.c.url)
        .where(links.c.message_id == message_id)
        .order_by(links.c.position)
    ).all()
    return [dict(r._mapping) for r in rows]


def message_info(engine: Engine, message_id: int) -> MessageInfo | None:
    """What the hot path caches about a message (one read per message per node)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                messages.c.id,
                messages.c.campaign_id,
                messages.c.sent_at,
                messages.c.created_at,
                messages.c.recipient,
                messages.c.honeypot_position,
            ).where(messages.c.id == message_id)
        ).first()
        if row is None:
            return None
        # Opted out: the pixel is still served, but an unknown message records nothing.
        if conn.execute(
            select(optouts.c.recipient).where(optouts.c.recipient == row.recipient.lower())
        ).first():
            return None
        count = conn.execute(
            select(func.count()).select_from(links).where(links.c.message_id == message_id)
        ).scalar_one()
    return MessageInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        sent_at=row.sent_at,
        created_at=row.created_at,
        link_count=int(count),
        honeypot_position=row.honeypot_position,
    )


def recipients_of(
    conn: Connection, message_ids: Iterable[int]
) -> dict[int, tuple[str, int | None]]:
    """Recipient and honeypot position of each message (one indexed read)."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(messages.c.id, messages.c.recipient, messages.c.honeypot_position).where(
            messages.c.id.in_(ids)
        )
    ).all()
    return {int(r.id): (r.recipient, r.honeypot_position) for r in rows}


def stats_row(conn: Connection, message_id: int) -> dict[str, Any]:
    """The message's rollup row (message_stats) as a dict; {} if it has none."""
    st = conn.execute(select(message_stats).where(message_stats.c.message_id == message_id)).first()
    return dict(st._mapping) if st else {}


def public_fields(row: Any, message_id: int) -> dict[str, Any]:
    """The fields every JSON view of a message starts with (the API's message,
    a recipient's export, the message list), from a ``messages`` row."""
    return {
        "id": message_id,
        "recipient": row["recipient"],
        "subject": row["subject"],
        "campaign_id": row["campaign_id"],
        "variant": row["variant"],
        "sent_at": iso(row["sent_at"]),
        "created_at": iso(row["created_at"]),
    }
