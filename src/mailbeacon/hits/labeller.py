"""Labels on the live path: classify each hit from memory, and let late
evidence (honeypot, bursts) relabel what was already stored."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

from sqlalchemy import Engine
from starlette.types import Scope

from mailbeacon.classify import Context, classify, retro_relabel
from mailbeacon.classify.campaign import campaign_relabel
from mailbeacon.classify.networks import NetworkSet
from mailbeacon.geo import Geo
from mailbeacon.hits.memory import MISSING, Memory
from mailbeacon.model import DIRECT_LABELS, Event, Kind, MessageInfo
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as message_store
from mailbeacon.store import rollups
from mailbeacon.store.db import is_sqlite, placeholder, write_cursor

log = logging.getLogger("mailbeacon.labels")

# Hits that come from the reader's own device: only these get a country.


class Admitted(NamedTuple):
    ok: bool
    info: MessageInfo | None


REFUSED = Admitted(False, None)


class Labeller:
    """The hot path's classifier hook and the writer's post-commit hook."""

    def __init__(
        self,
        engine: Engine,
        memory: Memory,
        networks: Callable[[], NetworkSet],
        sender_cookie: Callable[[Scope], bool] = lambda _s: False,
        geo: Geo | None = None,
        enabled: bool = True,
    ) -> None:
        self.geo = geo
        self.enabled = enabled
        self.engine = engine
        self.memory = memory
        self.networks = networks
        self.sender_cookie = sender_cookie
        # id(click) -> the campaign's messages its source clicked lately, taken
        # on the event loop (Memory's campaign index belongs to that thread)
        # for the writer's campaign-wide relabel after the commit.
        self._sources: dict[int, frozenset[int]] = {}
        self._sources_lock = threading.Lock()

    async def message_info(self, message_id: int) -> MessageInfo | None:
        info = self.memory.message(message_id)
        if info is MISSING:
            try:
                info = await asyncio.to_thread(message_store.message_info, self.engine, message_id)
            except Exception as exc:  # noqa: BLE001 - store down: classify with less context
                log.debug("message %s facts unavailable: %s", message_id, exc)
                return None
            self.memory.put_message(message_id, info)  # type: ignore[arg-type]
        return info  # type: ignore[return-value]

    async def admit(self, event: Event) -> Admitted:
        """Whether the hit may be stored at all: not when its message was
        erased or its recipient opted out. With the message's facts (None if
        the store could not be read: the hit is then labelled with less context)."""
        mid = event.message_id
        cached = self.memory.message(mid)
        if cached is MISSING:
            info = await self.message_info(mid)
            if info is None and self.memory.message(mid) is None:
                return REFUSED  # erased or opted out
            return Admitted(True, info)
        if cached is None:
            return REFUSED
        return Admitted(True, cached)  # type: ignore[arg-type]

    def label(self, event: Event, scope: Scope, info: MessageInfo | None) -> None:
        """Label an admitted hit in place, from memory only (no store read);
        the one place a hit's label is decided on the live path."""
        if not self.enabled:
            return  # the `classify` setting is off: stored unlabelled
        mid = event.message_id
        clicks = (
            self.memory.campaign_clicks(info.campaign_id if info else None, event.at, event.ip_hash)
            if event.kind == Kind.CLICK
            else {}  # the many-recipients rule is for clicks only
        )
        ctx = Context(
            message=info,
            prior=self.memory.history(mid),
            campaign_recent_clicks=clicks,
            networks=self.networks(),
            sender_cookie=self.sender_cookie(scope),
            sender_ips=self.memory.sender_ips(event.at),
            now=event.at,
        )
        classify(event, ctx).apply(event)
        others = clicks.get(event.ip_hash) if event.ip_hash else None
        if others:
            with self._sources_lock:
                if len(self._sources) > 10_000:  # hits the recorder never committed
                    self._sources.clear()
                self._sources[id(event)] = frozenset(others)
        if self.geo is not None and event.label in DIRECT_LABELS:
            event.country = self.geo.country(event.ip)
        self.memory.remember(event, info)

    # -- late evidence, run by the writer thread after each commit --------------

    def after_commit(self, batch: Sequence[Event]) -> None:
        self.memory.stored(batch)  # what the rules do not read goes: memory stays bounded
        clicks = [e for e in batch if e.kind == Kind.CLICK]
        changes: dict[int, tuple[Event, str, list[str]]] = {}
        for mid in {e.message_id for e in clicks}:
            info = self.memory.message(mid)
            recent = self.memory.recent(mid)
            found = retro_relabel(recent, info if isinstance(info, MessageInfo) else None)
            self._collect(recent, found, changes)
        with self._sources_lock:
            spans = [self._sources.pop(id(e), None) for e in clicks]
        done: set[frozenset[int]] = set()
        for e, others in zip(clicks, spans, strict=True):
            mids = others | {e.message_id} if others else None
            if mids is None or mids in done:
                continue
            done.add(mids)
            events = [x for m in sorted(mids) for x in self.memory.recent(m)]
            self._collect(events, campaign_relabel(events), changes)
        if changes:  # one transaction for every relabel and its rollup moves
            apply_relabels(self.engine, list(changes.values()))
            for ev, label, reasons in changes.values():  # memory follows the store
                ev.label, ev.reasons = label, reasons

    @staticmethod
    def _collect(
        events: Sequence[Event],
        found: Sequence[tuple[int, str, list[str]]],
        changes: dict[int, tuple[Event, str, list[str]]],
    ) -> None:
        by_id = {e.id: e for e in events}
        for eid, label, reasons in found:
            ev = by_id.get(eid)
            if ev is not None and eid not in changes:
                changes[eid] = (ev, label, reasons)


def apply_relabels(engine: Engine, changes: Sequence[tuple[Event, str, list[str]]]) -> None:
    """Write label changes and move their counts, in one transaction.

    ``changes`` pairs each event *as stored* (old label) with its new label
    and reasons; the rollups lose the old contribution and gain the new one.
    """
    mark = placeholder(engine)
    items: list[tuple[Event, int]] = []
    for ev, label, reasons in changes:
        items.append((ev, -1))
        items.append((replace(ev, label=label, reasons=list(reasons)), 1))
    with write_cursor(engine) as cur:
        event_store.relabel(cur, mark, [(ev.id, label, reasons) for ev, label, reasons in changes])
        rollups.apply(cur, mark, not is_sqlite(engine), items)
