"""What a node remembers between hits, so classifying one needs no database read.

Per message: its facts (sent_at, campaign, links, honeypot) and its last few
events with their labels; per campaign: which sources clicked for which
messages lately; and the addresses the sender used for the API or dashboard.
Everything is bounded and evicts oldest first. A node only remembers hits it
served itself; with several nodes, behavioural rules see each node's share
(documented in docs/classification.md).

The bound, worst case (every message at its limit, the longest values a
request can carry, every hit from a new address): at most ``MAX_EVENTS``
events in all histories. Once an event is committed, what no rule reads
(user agent, headers, URL) is dropped (:meth:`Memory.stored`), leaving
~0.65 KB. Events not yet committed are the writer's queue (``queue_max``),
not counted here. Campaign clicks: ``MAX_CLICK_SOURCES`` sources x
``CLICKS_PER_SOURCE`` messages. Measured with tracemalloc: a flood of 200,000
such hits leaves 59 MB held; before these bounds, 4,000 messages x 50 events
held 1,074 MB, and the old cap of 100,000 messages allowed ~27 GB.
Message facts: ``MAX_MESSAGES`` x ~0.25 KB more.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from mailbeacon.model import Event, Kind, MessageInfo

RECENT_PER_MESSAGE = 50  # the rules look back 60 s; 50 hits covers any burst
MAX_EVENTS = 100_000  # remembered events across all messages; least recently hit go first
MAX_MESSAGES = 100_000  # cached message facts
CAMPAIGN_WINDOW_S = 3600.0  # "one IP clicking for many recipients" looks back an hour
# The rule needs CAMPAIGN_OTHER_MESSAGES (3) other messages per source; the
# newest 16 are plenty, and a scanner clicking for 100k recipients costs 16.
CLICKS_PER_SOURCE = 16
MAX_CLICK_SOURCES = 20_000  # (campaign, source) pairs, ~0.35 KB each; oldest go first
SENDER_IP_TTL_S = 24 * 3600.0

_MISSING = object()


class Memory:
    def __init__(self, max_messages: int = MAX_MESSAGES, max_events: int = MAX_EVENTS) -> None:
        self.max_messages = max_messages
        self.max_events = max_events
        self._messages: OrderedDict[int, MessageInfo | None] = OrderedDict()
        self._negative_until: dict[int, float] = {}
        # Lists, not deques: a deque's first block is ~0.6 KB even for one
        # event, which for 100k messages would be 60 MB of empty slots.
        self._recent: OrderedDict[int, list[Event]] = OrderedDict()
        self._events = 0  # sum of len() over _recent
        # (campaign id, ip_hash) -> {message id: last click time}, newest last
        self._campaign_clicks: OrderedDict[tuple[int, str], dict[int, float]] = OrderedDict()
        self._sender_ips: dict[str, float] = {}
        self._sender_set: frozenset[str] = frozenset()
        self._pruned_at = 0.0
        self._lock = threading.Lock()  # the writer thread reads recent events too

    # -- messages -------------------------------------------------------------

    def message(self, message_id: int) -> MessageInfo | None | object:
        """The cached facts, None if known not to exist, or ``MISSING``."""
        info = self._messages.get(message_id, _MISSING)
        if info is _MISSING:
            return _MISSING
        if info is None and time.monotonic() > self._negative_until.get(message_id, 0):
            return _MISSING  # re-check now and then: another node may have made it
        self._messages.move_to_end(message_id)
        return info

    def put_message(self, message_id: int, info: MessageInfo | None) -> None:
        with self._lock:
            self._messages[message_id] = info
            self._messages.move_to_end(message_id)
            if info is None:
                self._negative_until[message_id] = time.monotonic() + 60
            while len(self._messages) > self.max_messages:
                old, _ = self._messages.popitem(last=False)
                self._drop_history(old)
                self._negative_until.pop(old, None)

    def clear(self) -> None:
        """Forget every message and its events (a recipient opted out or was
        erased: nothing of theirs may be used or recorded from here on)."""
        with self._lock:
            self._messages.clear()
            self._negative_until.clear()
            self._recent.clear()
            self._events = 0
            self._campaign_clicks.clear()

    # -- events ---------------------------------------------------------------

    @property
    def remembered(self) -> int:
        """Events in all histories (at most ``max_events``)."""
        return self._events

    def history(self, message_id: int) -> Sequence[Event]:
        """The live history, not a copy: for the event loop thread, which is
        the only one that appends (``remember``). Other threads use ``recent``."""
        return self._recent.get(message_id) or ()

    def recent(self, message_id: int) -> tuple[Event, ...]:
        events = self._recent.get(message_id)
        return tuple(events) if events else ()

    def remember(self, event: Event, info: MessageInfo | None) -> None:
        """Add a just-classified event to its message's history (before commit,
        so a burst arriving within one batch sees its own earlier hits)."""
        mid = event.message_id
        with self._lock:
            events = self._recent.get(mid)
            if events is None:
                events = self._recent[mid] = []
            else:
                self._recent.move_to_end(mid)
            events.append(event)
            self._events += 1
            if len(events) > RECENT_PER_MESSAGE:
                del events[0]
                self._events -= 1
            while self._events > self.max_events:
                old, dropped = self._recent.popitem(last=False)
                self._events -= len(dropped)
        if event.kind == Kind.CLICK and info is not None and info.campaign_id is not None:
            self._clicked(info.campaign_id, event.ip_hash, mid, event.at)

    def stored(self, events: Iterable[Event]) -> None:
        """``events`` were committed: keep only what the rules read of them.

        The user agent, headers and URL are in the store now; rules and late
        relabelling read kind, time, link, label, reasons, source and device.
        """
        for e in events:
            e.user_agent = ""
            e.headers = {}
            e.url = None

    def _drop_history(self, message_id: int) -> None:
        dropped = self._recent.pop(message_id, None)
        if dropped:
            self._events -= len(dropped)

    def _clicked(self, campaign_id: int, source: str, message_id: int, at: float) -> None:
        key = (campaign_id, source)
        with self._lock:
            msgs = self._campaign_clicks.get(key)
            if msgs is None:
                msgs = self._campaign_clicks[key] = {}
            else:
                self._campaign_clicks.move_to_end(key)
                msgs.pop(message_id, None)  # re-inserted below: newest last
            msgs[message_id] = at
            if len(msgs) > CLICKS_PER_SOURCE:
                del msgs[next(iter(msgs))]
            while len(self._campaign_clicks) > MAX_CLICK_SOURCES:
                self._campaign_clicks.popitem(last=False)

    def campaign_clicks(
        self, campaign_id: int | None, now: float, source: str | None = None
    ) -> dict[str, set[int]]:
        """Source -> messages of this campaign it clicked within the window;
        only ``source``'s entry when given (the rule reads no other)."""
        if campaign_id is None:
            return {}
        horizon = now - CAMPAIGN_WINDOW_S
        with self._lock:
            if source is not None:
                msgs = self._campaign_clicks.get((campaign_id, source))
                pairs = [(source, msgs)] if msgs else []
            else:
                pairs = [(s, m) for (c, s), m in self._campaign_clicks.items() if c == campaign_id]
            out: dict[str, set[int]] = {}
            for src, msgs in pairs:
                fresh = {m for m, at in msgs.items() if at >= horizon}
                if fresh:
                    out[src] = fresh
                else:
                    del self._campaign_clicks[(campaign_id, src)]
        return out

    # -- the sender -----------------------------------------------------------

    def saw_sender(self, ip: str, now: float | None = None) -> None:
        with self._lock:  # API threads write here, the loop thread prunes
            fresh = ip not in self._sender_ips
            self._sender_ips[ip] = now if now is not None else time.time()
            if fresh:
                self._sender_set = frozenset(self._sender_ips)

    def sender_ips(self, now: float) -> frozenset[str]:
        """Addresses the sender used lately; pruned at most once a minute
        (this is read on every hit)."""
        if now - self._pruned_at > 60:
            self._pruned_at = now
            horizon = now - SENDER_IP_TTL_S
            with self._lock:
                for ip in [ip for ip, at in self._sender_ips.items() if at < horizon]:
                    del self._sender_ips[ip]
                self._sender_set = frozenset(self._sender_ips)
        return self._sender_set


MISSING = _MISSING
