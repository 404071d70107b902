"""What a node remembers between hits, so classifying one needs no database read.

Per message: its facts (sent_at, campaign, links, honeypot) and its last few
events with their labels; per campaign: which sources clicked for which
messages lately; and the addresses the sender used for the API or dashboard.
Everything is bounded and evicts oldest first. A node only remembers hits it
served itself; with several nodes, behavioural rules see each node's share
(documented in docs/classification.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence

from mailbeacon.model import Event, Kind, MessageInfo

RECENT_PER_MESSAGE = 50  # the rules look back 60 s; 50 hits covers any burst
MAX_MESSAGES = 100_000  # ~40 MB at the worst with full histories
CAMPAIGN_WINDOW_S = 3600.0  # "one IP clicking for many recipients" looks back an hour
SENDER_IP_TTL_S = 24 * 3600.0

_MISSING = object()


class Memory:
    def __init__(self, max_messages: int = MAX_MESSAGES) -> None:
        self.max_messages = max_messages
        self._messages: OrderedDict[int, MessageInfo | None] = OrderedDict()
        self._negative_until: dict[int, float] = {}
        self._recent: dict[int, deque[Event]] = {}
        # campaign id -> ip_hash -> {message id: last click time}
        self._campaign_clicks: dict[int, dict[str, dict[int, float]]] = {}
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
                self._recent.pop(old, None)
                self._negative_until.pop(old, None)

    def forget_message(self, message_id: int) -> None:
        with self._lock:
            self._messages.pop(message_id, None)
            self._recent.pop(message_id, None)

    def clear(self) -> None:
        """Forget every message and its events (a recipient opted out or was
        erased: nothing of theirs may be used or recorded from here on)."""
        with self._lock:
            self._messages.clear()
            self._negative_until.clear()
            self._recent.clear()
            self._campaign_clicks.clear()

    # -- events ---------------------------------------------------------------

    def history(self, message_id: int) -> Sequence[Event]:
        """The live history, not a copy: for the event loop thread, which is
        the only one that appends (``remember``). Other threads use ``recent``."""
        return self._recent.get(message_id) or ()

    def recent(self, message_id: int) -> tuple[Event, ...]:
        dq = self._recent.get(message_id)
        return tuple(dq) if dq else ()

    def remember(self, event: Event, info: MessageInfo | None) -> None:
        """Add a just-classified event to its message's history (before commit,
        so a burst arriving within one batch sees its own earlier hits)."""
        with self._lock:
            dq = self._recent.get(event.message_id)
            if dq is None:
                dq = self._recent[event.message_id] = deque(maxlen=RECENT_PER_MESSAGE)
            dq.append(event)
        if event.kind == Kind.CLICK and info is not None and info.campaign_id is not None:
            by_source = self._campaign_clicks.setdefault(info.campaign_id, {})
            by_source.setdefault(event.ip_hash, {})[event.message_id] = event.at

    def campaign_clicks(self, campaign_id: int | None, now: float) -> dict[str, set[int]]:
        if campaign_id is None:
            return {}
        by_source = self._campaign_clicks.get(campaign_id)
        if not by_source:
            return {}
        out: dict[str, set[int]] = {}
        horizon = now - CAMPAIGN_WINDOW_S
        for source, msgs in list(by_source.items()):
            fresh = {m for m, at in msgs.items() if at >= horizon}
            if fresh:
                out[source] = fresh
            else:
                del by_source[source]
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

    def messages_in(self, events: Iterable[Event]) -> set[int]:
        return {e.message_id for e in events}


MISSING = _MISSING
