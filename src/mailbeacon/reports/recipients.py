"""Who: the recipients of a campaign by what they did, and the warm leads.

Both read ``message_stats`` (one row per message) joined with ``messages``
for the address, through the ``(campaign_id, opened_at)`` and
``(campaign_id, last_human_at)`` indexes, so a page costs the same at 100
messages as at 100k.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, select

from mailbeacon.reports.domains import blind_domains, domain_of, unknown_reason
from mailbeacon.store.schema import counters, message_stats, messages
from mailbeacon.timefmt import iso

Filter = Literal["all", "opened", "clicked", "not_opened"]
WARM_LIMIT = 20
# "Opened repeatedly": two human pixel hits. One open is reading the mail;
# coming back to it is the signal sales people ask for.
REPEAT_OPENS = 2

_S = message_stats.c
_HUMAN_OPENS = _S.open_human_direct + _S.open_human_via_proxy


def _row(r: Any) -> dict[str, Any]:
    opened = r.opened_at is not None
    return {
        "open_status": "opened" if opened else "not_opened",
        "open_status_reason": None,
        "message_id": int(r.message_id),
        "recipient": r.recipient,
        "variant": r.variant or None,
        "opened": r.opened_at is not None,
        "opened_at": iso(r.opened_at),
        "human_opens": int(r.human_opens),
        "human_clicks": int(r.click_human),
        "last_human_at": iso(r.last_human_at),
    }


def _base() -> Any:
    return select(
        _S.message_id,
        messages.c.recipient,
        _S.variant,
        _S.opened_at,
        _HUMAN_OPENS.label("human_opens"),
        _S.click_human,
        _S.last_human_at,
        _S.read_at,
    ).join(messages, messages.c.id == _S.message_id)


def recipients(
    conn: Connection, campaign_id: int, which: Filter = "all", limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of a campaign's recipients; opened ones newest open first,
    the others by message id (a stable order for paging)."""
    q = _base().where(_S.campaign_id == campaign_id)
    if which == "opened":
        q = q.where(_S.opened_at.is_not(None)).order_by(_S.opened_at.desc(), _S.message_id)
    elif which == "clicked":
        q = q.where(_S.click_human > 0).order_by(_S.message_id)
    elif which == "not_opened":
        q = q.where(_S.opened_at.is_(None)).order_by(_S.message_id)
    else:
        q = q.order_by(_S.message_id)
    return with_open_status(conn, [_row(r) for r in conn.execute(q.limit(limit).offset(offset))])


def with_open_status(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unopened rows whose domain never shows a person's open say "unknown"
    instead of "not opened", with the reason (reports/domains.py)."""
    unopened = [r for r in rows if r["open_status"] == "not_opened"]
    blind = blind_domains(conn, (domain_of(r["recipient"]) for r in unopened)) if unopened else {}
    for r in unopened:
        d = domain_of(r["recipient"])
        if d in blind:
            r["open_status"], r["open_status_reason"] = "unknown", unknown_reason(d, blind[d])
    return rows


def recipient_total(conn: Connection, campaign_id: int, which: Filter) -> int:
    """How many rows the filter has in all, from the counters (no count query)."""
    got = dict(
        conn.execute(
            select(counters.c.key, counters.c.n).where(
                counters.c.campaign_id == campaign_id,
                counters.c.dim == "unique",
                counters.c.key.in_(("messages", "opened", "clicked")),
            )
        ).all()
    )
    n, opened = int(got.get("messages", 0)), int(got.get("opened", 0))
    return {
        "all": n,
        "opened": opened,
        "clicked": int(got.get("clicked", 0)),
        "not_opened": n - opened,
    }[which]


def warm_leads(conn: Connection, campaign_id: int, limit: int = WARM_LIMIT) -> list[dict[str, Any]]:
    """Who clicked or came back to the mail, most recent human activity first."""
    q = (
        _base()
        .where(
            _S.campaign_id == campaign_id,
            _S.last_human_at.is_not(None),
            # read_at: an open measured as read (docs/read-time.md)
            (_S.click_human > 0) | (_HUMAN_OPENS >= REPEAT_OPENS) | _S.read_at.is_not(None),
        )
        .order_by(_S.last_human_at.desc())
        .limit(limit)
    )
    out = []
    for r in conn.execute(q).all():
        row = _row(r)
        if row["human_clicks"]:
            row["why"] = "clicked"
        elif r.read_at is not None:
            row["why"] = "read"  # kept open past read_read_above: stronger than a second look
        else:
            row["why"] = "opened_repeatedly"
        out.append(row)
    return out
