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

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

from mailbeacon.classify import Context, classify, retro_relabel
from mailbeacon.classify.campaign import campaign_relabel
from mailbeacon.classify.networks import NetworkSet
from mailbeacon.classify.reasons import Reason
from mailbeacon.hits.labeller import apply_relabels
from mailbeacon.hits.memory import Memory
from mailbeacon.model import Event, MessageInfo
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as message_store

CHUNK = 5000  # label changes written per transaction
_KEEP_SELF = (Reason.SELF_COOKIE.value, Reason.SELF_SENDER_IP.value)
_CAMPAIGN = (Reason.CAMPAIGN_MANY_RECIPIENTS.value, Reason.CAMPAIGN_SAME_SECOND.value)


def count(engine: Engine, campaign_id: int | None, since: float | None) -> int:
    """How many stored hits a run over these would replay (for a progress bar)."""
    return event_store.count_hits(engine, campaign_id, since)


def run(  # noqa: C901 - one transaction: split, its steps would hide the lock order
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
    for row in event_store.stored_hits(engine, campaign_id, since, message_id):
        ev = event_store.stored_event(row)
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
