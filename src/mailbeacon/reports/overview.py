"""The campaign list with each campaign's figures, for the dashboard's
overview (from the ``unique`` counters: the same cost at 100 or 1M events)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mailbeacon.reports.campaign import rate
from mailbeacon.store import messages as message_store
from mailbeacon.store.schema import counters


def campaigns_with_figures(conn: Connection, archived: bool = False) -> list[dict[str, Any]]:
    """Each campaign with its unique counters (one read of the ``unique`` rows);
    archived ones only when asked."""
    rows = message_store.list_campaigns(conn, include_archived=archived)
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
