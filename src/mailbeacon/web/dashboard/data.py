"""The few reads the dashboard needs beyond the reports package (all from
rollups or indexed rows: pages cost the same at 100 or 1M events)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mailbeacon.reports.campaign import rate
from mailbeacon.store import messages as message_store
from mailbeacon.store.schema import counters, message_stats, messages

_S = message_stats.c


def campaigns_with_figures(conn: Connection) -> list[dict[str, Any]]:
    """Each campaign with its unique counters (one read of the ``unique`` rows)."""
    rows = message_store.list_campaigns(conn)
    figures: dict[int, dict[str, int]] = {}
    for cid, key, n in conn.execute(
        select(counters.c.campaign_id, counters.c.key, counters.c.n).where(
            counters.c.dim == "unique"
        )
    ).all():
        figures.setdefault(int(cid), {})[key] = int(n)
    out = []
    for r in rows:
        f = figures.get(int(r["id"]), {})
        n = f.get("messages", 0)
        out.append(
            {
                **r,
                "messages": n or r.get("messages", 0),
                "opened": f.get("opened", 0),
                "clicked": f.get("clicked", 0),
                "machine": f.get("machine", 0),
                "scanned": f.get("scanned", 0),
                "open_rate": rate(f.get("opened", 0), n),
                "click_rate": rate(f.get("clicked", 0), n),
            }
        )
    return out


def recent_messages(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    q = (
        select(
            messages.c.id,
            messages.c.recipient,
            messages.c.subject,
            messages.c.campaign_id,
            messages.c.sent_at,
            messages.c.created_at,
            _S.opened_at,
            (_S.open_human_direct + _S.open_human_via_proxy).label("human_opens"),
            _S.click_human,
            _S.open_machine_prefetch,
            (_S.open_security_scanner + _S.click_scanner).label("scanner"),
            (_S.open_bot_other + _S.click_bot).label("bot"),
            (_S.open_self + _S.click_self).label("self_hits"),
        )
        .select_from(messages.outerjoin(message_stats, _S.message_id == messages.c.id))
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q).all()]


def message_stats_row(conn: Connection, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(message_stats).where(_S.message_id == message_id)).first()
    return dict(row._mapping) if row else None
