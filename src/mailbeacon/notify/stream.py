"""A live stream of new events as server-sent events.

It polls the events table by id (``id > last``) instead of listening to the
local recorder, so a client connected to one node sees hits recorded by every
node. A poll is one indexed range read; 0.5 s keeps the feed feeling live.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Engine, func, select

from mailbeacon.store import events as event_store
from mailbeacon.store.rollups import CLASS
from mailbeacon.store.schema import events, message_stats, messages

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0  # below the 30-60 s idle timeouts of common proxies
# Streams end after this long; EventSource reconnects by itself with
# Last-Event-ID, so nothing is lost, and no connection lives forever.
MAX_SECONDS = 300.0
PAGE = 200


def latest_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)


def fetch(engine: Engine, after: int, limit: int = PAGE) -> list[dict[str, Any]]:
    """Events after ``after`` with their message, oldest first."""
    q = (
        select(
            events,
            messages.c.recipient,
            messages.c.subject,
            messages.c.campaign_id,
            message_stats.c.opened_at,
        )
        .select_from(
            events.outerjoin(messages, messages.c.id == events.c.message_id).outerjoin(
                message_stats, message_stats.c.message_id == events.c.message_id
            )
        )
        .where(events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        m = r._mapping
        ev = event_store.public(m)
        human = CLASS.get(m["label"] or "") == "h"
        ev.update(
            recipient=m["recipient"],
            subject=m["subject"],
            campaign_id=m["campaign_id"],
            human=human,
            # The message's first human open (or implied open by a human click).
            first_open=human and m["opened_at"] is not None and m["opened_at"] == m["at"],
        )
        ev.pop("ip", None)
        out.append(ev)
    return out


def start_after(engine: Engine, last_event_id: str | None, after: int | None) -> int:
    """Resume from Last-Event-ID (or ?after=), else start with what comes next."""
    for raw in (last_event_id, after):
        if raw is not None and str(raw).strip().isdigit():
            return int(str(raw).strip())
    return latest_id(engine)


async def sse(
    engine: Engine,
    after: int,
    *,
    is_disconnected: Callable[[], Any],
    max_seconds: float = MAX_SECONDS,
    enrich: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    """Yield SSE frames: ``id:``, ``event: hit``, ``data: <json>``."""
    started = beat = time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < max_seconds:
        if await is_disconnected():
            return
        try:
            rows = await asyncio.to_thread(fetch, engine, after)
        except Exception:  # noqa: BLE001 - store blip: keep the stream, try again
            rows = []
        for ev in rows:
            after = ev["id"]
            if enrich is not None:
                ev = enrich(ev)
            yield f"id: {after}\nevent: hit\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n"
        now = time.monotonic()
        if rows:
            beat = now
        elif now - beat > HEARTBEAT_SECONDS:
            beat = now
            yield ": keep-alive\n\n"
        if len(rows) < PAGE:
            await asyncio.sleep(POLL_SECONDS)
