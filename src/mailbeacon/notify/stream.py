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

from sqlalchemy import Engine

from mailbeacon.model import HUMAN_LABELS
from mailbeacon.store import events as event_store

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0  # below the 30-60 s idle timeouts of common proxies
# Streams end after this long; EventSource reconnects by itself with
# Last-Event-ID, so nothing is lost, and no connection lives forever.
MAX_SECONDS = 300.0
PAGE = 200


def latest_id(engine: Engine) -> int:
    return event_store.latest_id(engine)


def fetch(engine: Engine, after: int, limit: int = PAGE) -> list[dict[str, Any]]:
    """Events after ``after`` with their message, oldest first."""
    return [_shape(m) for m in event_store.feed(engine, after=after, limit=limit)]


def recent(
    engine: Engine,
    limit: int = 50,
    *,
    labels: list[str] | None = None,
    campaign_id: int | None = None,
    up_to: int | None = None,
) -> list[dict[str, Any]]:
    """The last ``limit`` events (up to id ``up_to``), newest first, as
    :func:`fetch` shapes them: what the live feed opens on (a backward walk of
    the primary key)."""
    rows = event_store.feed(
        engine, limit=limit, labels=labels, campaign_id=campaign_id, up_to=up_to
    )
    return [_shape(m) for m in rows]


def _shape(m: Any) -> dict[str, Any]:
    ev = event_store.public(m)
    human = m["label"] in HUMAN_LABELS
    ev.update(
        recipient=m["recipient"],
        subject=m["subject"],
        campaign_id=m["campaign_id"],
        human=human,
        # The message's first human open (or implied open by a human click).
        first_open=human and m["opened_at"] is not None and m["opened_at"] == m["at"],
        # What notification preferences choose from (dashboard Settings).
        first_click=human
        and m["kind"] == "click"
        and m["first_human_click_at"] is not None
        and m["first_human_click_at"] == m["at"],
        first_reply=m["kind"] == "reply"
        and m["label"] == "human"
        and m["replied_at"] is not None
        and m["replied_at"] == m["at"],
    )
    ev.pop("ip", None)
    return ev


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
