"""Late evidence: relabel earlier clicks once a later hit shows what they were.

classify() sees only the past, so the first click of a same-second burst, or
the clicks just before a honeypot hit, are labelled before the evidence
arrives. The recorder calls :func:`retro_relabel` with a message's recent
events after each batch and writes the changes (labels are recomputable;
raw events never change, docs/design.md "Storage").
"""

from __future__ import annotations

from collections.abc import Sequence

from mailbeacon.classify.reasons import Reason
from mailbeacon.classify.rules import BURST_S, EVERY_LINK_WINDOW_S, HONEYPOT_WINDOW_S
from mailbeacon.classify.sources import same_source
from mailbeacon.classify.verdicts import HUMAN, SCANNER
from mailbeacon.model import Event, Kind, MessageInfo

__all__ = ["retro_relabel"]


def retro_relabel(  # noqa: C901 - each evidence kind is one branch; split, the order of precedence is lost
    events: Sequence[Event], message: MessageInfo | None
) -> list[tuple[int, str, list[str]]]:
    """(event id, new label, new reasons) for each stored click whose label must change.

    Rules, each also applied live by classify() to the later hit:
    - a honeypot hit makes every click within +-10 s ``scanner`` (mautic #9798);
    - two different links from the same ip_hash or /24 within 1 s are both
      ``scanner`` (Marketo proximity, gophish #973);
    - one source clicking every link (>= 3, honeypot excluded) within 60 s
      makes those clicks ``scanner`` (CustomerMinds rule 1).
    Only clicks labelled ``human`` are relabelled: late evidence exists to
    catch machines taken for people. ``self`` stays (sender signals outrank
    behaviour), and a ``bot`` stays a bot (its UA names what it is: a library
    clicking every link is that library, craft-campaign#546).
    Events without an id, and opens, are ignored.
    """
    clicks = sorted(
        (e for e in events if e.kind == Kind.CLICK and e.id is not None), key=lambda e: e.at
    )
    honeypot = message.honeypot_position if message is not None else None
    found: dict[int, list[str]] = {}  # event id -> codes to add

    def mark(e: Event, code: Reason) -> None:
        assert e.id is not None
        codes = found.setdefault(e.id, [])
        if code not in codes:
            codes.append(code)

    traps = [e for e in clicks if honeypot is not None and e.link_position == honeypot]
    for t in traps:
        mark(t, Reason.HONEYPOT)
        for e in clicks:
            if e is not t and abs(e.at - t.at) <= HONEYPOT_WINDOW_S:
                mark(e, Reason.HONEYPOT_WINDOW)

    real = [e for e in clicks if honeypot is None or e.link_position != honeypot]
    for i, a in enumerate(real):
        for b in real[i + 1 :]:
            if b.at - a.at > BURST_S:
                break
            if a.link_position != b.link_position and same_source(a, b):
                mark(a, Reason.BURST_SAME_SECOND)
                mark(b, Reason.BURST_SAME_SECOND)

    needed = (message.link_count - (1 if honeypot is not None else 0)) if message else 0
    if needed >= 3:
        for i, a in enumerate(real):
            window = [
                b for b in real[i:] if b.at - a.at <= EVERY_LINK_WINDOW_S and same_source(a, b)
            ]
            if len({b.link_position for b in window} - {None}) >= needed:
                for b in window:
                    mark(b, Reason.BURST_EVERY_LINK)

    out: list[tuple[int, str, list[str]]] = []
    for e in clicks:
        assert e.id is not None
        codes = found.get(e.id)
        # Only label changes are returned: an event already ``scanner`` keeps
        # its reasons, so a rerun over the same events returns nothing.
        if not codes or e.label != HUMAN:
            continue
        # The late evidence explains the new label, so it leads the reasons.
        out.append((e.id, SCANNER, [c for c in codes if c not in e.reasons] + list(e.reasons)))
    return out
