"""``mailbeacon reclassify``: recompute labels from the stored facts.

Run after a rule or a network list changes. Events are replayed per message
in the order they happened, with the same Context the live path builds, then
late-evidence rules run over each message's whole history, and the
campaign-wide ones over each campaign's. Only labels that
change are written.

What replay cannot see again: the full client address when only the /24
(/48) was stored (ranges narrower than that cannot match; use
``--store-ip full`` if that matters), and the sender's cookie or address at
the time, so a ``self`` verdict made from those is kept as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, func, select

from mailbeacon.classify import Context, classify, retro_relabel
from mailbeacon.classify.campaign import campaign_relabel
from mailbeacon.classify.networks import NetworkSet
from mailbeacon.classify.reasons import Reason
from mailbeacon.hits.labeller import apply_relabels
from mailbeacon.hits.memory import Memory
from mailbeacon.model import Event, Kind, MessageInfo
from mailbeacon.store import messages as message_store
from mailbeacon.store.schema import events, messages

CHUNK = 5000
_KEEP_SELF = (Reason.SELF_COOKIE.value, Reason.SELF_SENDER_IP.value)
_CAMPAIGN = (Reason.CAMPAIGN_MANY_RECIPIENTS.value, Reason.CAMPAIGN_SAME_SECOND.value)


def _query(campaign_id: int | None, since: float | None, message_id: int | None = None) -> Any:
    # Hits only: replies and reminders are not labelled by the hit classifier.
    hits = (Kind.OPEN.value, Kind.CLICK.value)
    q = select(events).where(events.c.kind.in_(hits)).order_by(events.c.at, events.c.id)
    if message_id is not None:
        q = q.where(events.c.message_id == message_id)
    if campaign_id is not None:
        ids = select(messages.c.id).where(messages.c.campaign_id == campaign_id)
        q = q.where(events.c.message_id.in_(ids))
    if since is not None:
        q = q.where(events.c.at >= since)
    return q


def count(engine: Engine, campaign_id: int | None, since: float | None) -> int:
    sub = _query(campaign_id, since).order_by(None).subquery()
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())


def _stored_events(
    engine: Engine, campaign_id: int | None, since: float | None, message_id: int | None
) -> Iterator[Any]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
            _query(campaign_id, since, message_id)
        )
        yield from result


def _event(row: Any) -> Event:
    ip = row.ip.split("/", 1)[0] if row.ip else ""
    return Event(
        id=row.id,
        message_id=row.message_id,
        kind=Kind(row.kind),
        at=row.at,
        method=row.method,
        ip=ip,
        ip_stored=row.ip,
        ip_hash=row.ip_hash,
        user_agent=row.user_agent,
        headers=json.loads(row.headers or "{}"),
        link_position=row.link_position,
        url=row.url,
        token_flags=tuple(f for f in (row.flags or "").split(",") if f),
        label=row.label,
        reasons=json.loads(row.reasons) if row.reasons else [],
    )


def run(
    engine: Engine,
    networks: NetworkSet,
    *,
    campaign_id: int | None = None,
    message_id: int | None = None,
    since: float | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, int]:
    """Reclassify; returns counts {"events", "changed"}.

    ``message_id`` replays one message (its sent_at changed): campaign-wide
    evidence is then not re-derived, so its labels are kept as they are.
    """
    memory = Memory(max_messages=10_000_000)
    history: dict[int, list[Event]] = {}
    before: dict[int, tuple[str | None, list[str]]] = {}
    seen = 0
    for row in _stored_events(engine, campaign_id, since, message_id):
        ev = _event(row)
        before[ev.id or 0] = (ev.label, list(ev.reasons))
        info = memory.message(ev.message_id)
        if not isinstance(info, MessageInfo):
            info = message_store.message_info(engine, ev.message_id)
            memory.put_message(ev.message_id, info)
        keep_self = ev.label == "self" and any(r in ev.reasons for r in _KEEP_SELF)
        ctx = Context(
            message=info,
            prior=memory.recent(ev.message_id),
            campaign_recent_clicks=memory.campaign_clicks(
                info.campaign_id if info else None, ev.at
            ),
            networks=networks,
            sender_cookie=keep_self and "self:cookie" in ev.reasons,
            sender_ips=frozenset({ev.ip})
            if keep_self and "self:sender_ip" in ev.reasons
            else frozenset(),
            now=ev.at,
        )
        classify(ev, ctx).apply(ev)
        memory.remember(ev, info)
        history.setdefault(ev.message_id, []).append(ev)
        seen += 1
        if seen % 1000 == 0:
            progress(1000)
    progress(seen % 1000)
    for mid, evs in history.items():
        info = memory.message(mid)
        for eid, label, reasons in retro_relabel(
            evs, info if isinstance(info, MessageInfo) else None
        ):
            for ev in evs:
                if ev.id == eid:
                    ev.label, ev.reasons = label, reasons
    by_campaign: dict[int, list[Event]] = {}
    for mid, evs in history.items():
        info = memory.message(mid)
        if isinstance(info, MessageInfo) and info.campaign_id is not None:
            by_campaign.setdefault(info.campaign_id, []).extend(evs)
    for evs in by_campaign.values() if message_id is None else ():  # across the campaign
        by_id = {ev.id: ev for ev in evs}
        for eid, label, reasons in campaign_relabel(evs):
            by_id[eid].label, by_id[eid].reasons = label, reasons
    changes: list[tuple[Event, str, list[str]]] = []
    for evs in history.values():
        for ev in evs:
            if ev.id is None or ev.label is None or before.get(ev.id) == (ev.label, ev.reasons):
                continue
            old_label, old_reasons = before[ev.id]
            if message_id is not None and old_reasons[:1] and old_reasons[0] in _CAMPAIGN:
                continue  # campaign evidence is not re-derived for one message
            stored = replace(ev, label=old_label, reasons=old_reasons)
            changes.append((stored, ev.label, ev.reasons))
    for start in range(0, len(changes), CHUNK):
        apply_relabels(engine, changes[start : start + CHUNK])
    return {"events": seen, "changed": len(changes)}
