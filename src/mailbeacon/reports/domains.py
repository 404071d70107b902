"""Honest "not opened": recipient domains whose opens we cannot see.

Some domains never show a person's open: a gateway strips or blocks remote
images, or only its scanners fetch them. Saying "not opened" for their
recipients is a claim the data cannot make; "unknown" is honest (issue 12
item 5). A domain counts as *blind* once at least ``MIN_MESSAGES`` messages
to it were sent ``MIN_AGE_S`` ago or more and none of them shows a human
open. Why 10: at a 20 % human open rate (a common B2B figure), a domain
whose opens *are* visible shows none in 10 messages with probability
0.8^10 = 11 %, and in 5 with 33 %; mislabelling such a domain "unknown"
costs little (it says less), the reverse misleads. A day, because most
real opens happen within it and a fresh send has had no chance yet.

Read-only queries, scanning the messages to the domains asked about
(``lower(recipient) LIKE '%@domain'``, stopping early where it can). A
per-domain rollup would make this one read; it needs a schema change.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Connection, and_, exists, func, select

from mailbeacon.store.schema import message_stats, messages

__all__ = ["MIN_AGE_S", "MIN_MESSAGES", "blind_domains", "domain_of", "unknown_reason"]

MIN_MESSAGES = 10
MIN_AGE_S = 86400.0

_S = message_stats.c


def domain_of(recipient: str) -> str:
    return recipient.rpartition("@")[2].strip().lower()


def unknown_reason(domain: str, checked: int) -> str:
    return (
        f"None of the {checked} or more messages to {domain} sent over a day ago shows a "
        "person's open: its mail system likely blocks images or only scans them, so opens "
        "there cannot be seen."
    )


def blind_domains(
    conn: Connection, domains: Iterable[str], now: float | None = None
) -> dict[str, int]:
    """domain -> messages checked, for each blind domain among ``domains``."""
    horizon = (time.time() if now is None else now) - MIN_AGE_S
    out: dict[str, int] = {}
    for domain in sorted({d for d in domains if d and "%" not in d and "_" not in d}):
        to_domain = and_(
            func.lower(messages.c.recipient).like("%@" + domain),
            messages.c.sent_at.is_not(None),
            messages.c.sent_at <= horizon,
        )
        sent = conn.execute(
            select(func.count()).select_from(
                select(messages.c.id).where(to_domain).limit(MIN_MESSAGES).subquery()
            )
        ).scalar_one()
        if sent < MIN_MESSAGES:
            continue
        seen = conn.execute(
            select(
                exists().where(
                    to_domain,
                    _S.message_id == messages.c.id,
                    (_S.open_human_direct + _S.open_human_via_proxy) > 0,
                )
            )
        ).scalar_one()
        if not seen:
            out[domain] = int(sent)
    return out
