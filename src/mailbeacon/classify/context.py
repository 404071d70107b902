"""What the rules read besides the event itself, and what they return.

Everything in a :class:`Context` is served from memory by the caller (the
recorder's per-message cache); the classifier never reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailbeacon.classify.networks import NetworkSet
from mailbeacon.model import Event, MessageInfo

__all__ = ["Context", "Verdict", "default_networks"]

_BUILTIN: NetworkSet | None = None


def default_networks() -> NetworkSet:
    """The builtin vendor lists, built once and shared by default Contexts."""
    global _BUILTIN
    if _BUILTIN is None:
        ns = NetworkSet.builtin()
        ns.build()
        _BUILTIN = ns
    return _BUILTIN


@dataclass(slots=True)
class Context:
    message: MessageInfo | None = None
    # This message's earlier events with their labels, oldest first; the
    # caller bounds it (e.g. the last 50): rules only look back 60 s.
    prior: Sequence[Event] = ()
    # ip_hash -> ids of messages of this campaign clicked from it recently.
    campaign_recent_clicks: Mapping[str, set[int]] = field(default_factory=dict)
    networks: NetworkSet = field(default_factory=default_networks)
    sender_cookie: bool = False  # the request carried a valid sender cookie
    sender_ips: frozenset[str] = frozenset()  # sender's dashboard/API addresses, recent
    now: float = 0.0


@dataclass(slots=True)
class Verdict:
    label: str
    reasons: list[str]
    confidence: float
    client: str | None = None
    os: str | None = None
    device: str | None = None

    def apply(self, event: Event) -> Event:
        """Copy the verdict onto ``event`` (label, reasons, attribution) and return it."""
        event.label = self.label
        event.reasons = list(self.reasons)
        event.confidence = self.confidence
        event.client, event.os, event.device = self.client, self.os, self.device
        return event
