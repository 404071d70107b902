"""Evidence that spans messages: one source clicking for many recipients.

A gateway that scans a campaign at delivery clicks each recipient's copy
from the same address within minutes (SendGrid support 4416801410459:
"clicks at about delivery time and the same IP across many recipients"),
often in the same second (Marketo's proximity rule, applied across the
campaign). classify() sees only the past, so the first recipients' clicks
were labelled before the pattern showed; :func:`campaign_relabel` finds every
click the pattern covers, the earlier ones included, and the caller writes
them with their rollup corrections through hits.labeller.apply_relabels.

The counter-case it must leave alone: colleagues behind one office NAT
reading and clicking the same mail hours apart, each after a real open
(warmbly PR #412 review). So the clicks must fall within a short span, and
a click that follows a person's open of its own message does not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from mailbeacon.classify.reasons import Reason
from mailbeacon.classify.rules import BURST_S
from mailbeacon.classify.verdicts import HUMAN, HUMAN_OPENS, SCANNER
from mailbeacon.model import Event, Kind

__all__ = ["CAMPAIGN_RECIPIENTS", "CAMPAIGN_SPAN_S", "campaign_relabel"]

CAMPAIGN_RECIPIENTS = 3  # the live rule's threshold (rules.CAMPAIGN_OTHER_MESSAGES + 1)
# A delivery-time scan of a campaign sent at once spans seconds to minutes
# (the staggered sends of a sequence are covered per click by its own
# delivery window); ten minutes, like rules.DELIVERY_S.
CAMPAIGN_SPAN_S = 600.0


def campaign_relabel(events: Iterable[Event]) -> list[tuple[int, str, list[str]]]:
    """(event id, new label, new reasons) for each ``human`` click to relabel.

    ``events`` are the stored events (with ids) of the messages one campaign's
    sources clicked lately, any order. Rules:
    - one ip_hash clicking >= 3 different messages within 10 minutes, none of
      those clicks after a person's open of its own message: all ``scanner``;
    - one ip_hash clicking 2 different messages within 1 s: both ``scanner``.
    """
    opened_at: dict[int, float] = {}
    by_source: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == Kind.OPEN and e.label in HUMAN_OPENS:
            first = opened_at.get(e.message_id)
            opened_at[e.message_id] = e.at if first is None else min(first, e.at)
        elif e.kind == Kind.CLICK and e.id is not None and e.ip_hash:
            by_source[e.ip_hash].append(e)
    found: dict[int, Reason] = {}
    for clicks in by_source.values():
        clicks.sort(key=lambda e: e.at)
        _many_recipients(clicks, opened_at, found)
        _same_second(clicks, found)
    out: list[tuple[int, str, list[str]]] = []
    for e in (c for cs in by_source.values() for c in cs):
        code = found.get(e.id or 0)
        if code is None or e.label != HUMAN:
            continue
        out.append((e.id or 0, SCANNER, [code, *(r for r in e.reasons if r != code)]))
    return out


def _many_recipients(
    clicks: list[Event], opened_at: dict[int, float], found: dict[int, Reason]
) -> None:
    blind = [c for c in clicks if not c.at >= opened_at.get(c.message_id, float("inf"))]
    start = 0
    for end, last in enumerate(blind):
        while last.at - blind[start].at > CAMPAIGN_SPAN_S:
            start += 1
        window = blind[start : end + 1]
        if len({c.message_id for c in window}) >= CAMPAIGN_RECIPIENTS:
            for c in window:
                found.setdefault(c.id or 0, Reason.CAMPAIGN_MANY_RECIPIENTS)


def _same_second(clicks: list[Event], found: dict[int, Reason]) -> None:
    for i, a in enumerate(clicks):
        for b in clicks[i + 1 :]:
            if b.at - a.at > BURST_S:
                break
            if a.message_id != b.message_id:
                for c in (a, b):
                    found.setdefault(c.id or 0, Reason.CAMPAIGN_SAME_SECOND)
