"""Campaigns, messages and their links."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from mailbeacon.model import MessageInfo
from mailbeacon.store.schema import campaigns, links, messages


class Conflict(ValueError):
    pass


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


def list_campaigns(conn: Connection) -> list[dict[str, Any]]:
    counts = (
        select(messages.c.campaign_id, func.count().label("messages"))
        .group_by(messages.c.campaign_id)
        .subquery()
    )
    rows = conn.execute(
        select(campaigns, func.coalesce(counts.c.messages, 0).label("messages"))
        .outerjoin(counts, counts.c.campaign_id == campaigns.c.id)
        .order_by(campaigns.c.id.desc())
    ).all()
    return [dict(r._mapping) for r in rows]


def insert_message(
    conn: Connection,
    *,
    recipient: str,
    subject: str | None,
    campaign_id: int | None,
    variant: str | None,
    sent_at: float | None,
    honeypot_position: int | None = None,
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
        )
        .returning(messages.c.id)
    ).scalar_one()
    return int(mid), now


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
        count = conn.execute(
            select(func.count()).select_from(links).where(links.c.message_id == message_id)
        ).scalar_one()
    return MessageInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        sent_at=row.sent_at,
        created_at=row.created_at,
        recipient_domain=row.recipient.rpartition("@")[2].lower(),
        link_count=int(count),
        honeypot_position=row.honeypot_position,
    )
