"""Campaign-wide late evidence (issue 12 item 2): the pure rule, table-driven."""

from __future__ import annotations

import pytest

from mailbeacon.classify.campaign import campaign_relabel
from mailbeacon.model import Event, Kind

T0 = 1_700_000_000.0


def _ev(eid: int, msg: int, kind: str, t: float, src: str, label: str) -> Event:
    return Event(
        message_id=msg,
        kind=Kind(kind),
        at=T0 + t,
        method="GET",
        ip="",
        user_agent="",
        ip_hash=src,
        label=label,
        reasons=["ua:browser"],
        id=eid,
    )


# (events as (message, kind, t, source, label), ids relabelled, reason)
CASES = [
    pytest.param(  # SendGrid 4416801410459: one address at delivery for 3 recipients
        [
            (1, "click", 8, "a", "human"),
            (2, "click", 15, "a", "human"),
            (3, "click", 21, "a", "human"),
        ],
        {0, 1, 2},
        "campaign:ip_many_recipients",
        id="three-recipients-earlier-ones-too",
    ),
    pytest.param(  # two recipients are not "many"
        [(1, "click", 8, "a", "human"), (2, "click", 15, "a", "human")],
        set(),
        None,
        id="two-recipients-minutes-apart-stay",
    ),
    pytest.param(  # warmbly PR #412 review: office NAT, hours apart, after real opens
        [
            (1, "open", 3400, "a", "human_direct"),
            (1, "click", 3460, "a", "human"),
            (2, "open", 11000, "a", "human_direct"),
            (2, "click", 11090, "a", "human"),
            (3, "open", 93000, "a", "human_direct"),
            (3, "click", 93100, "a", "human"),
        ],
        set(),
        None,
        id="office-nat-colleagues-hours-apart",
    ),
    pytest.param(  # colleagues clicking together, but each after opening their mail
        [
            (1, "open", 60, "a", "human_direct"),
            (1, "click", 70, "a", "human"),
            (2, "open", 65, "b", "human_via_proxy"),
            (2, "click", 80, "a", "human"),
            (3, "open", 90, "c", "human_direct"),
            (3, "click", 100, "a", "human"),
        ],
        set(),
        None,
        id="after-their-own-opens-stay",
    ),
    pytest.param(  # spread over more than 10 minutes: not one scan
        [
            (1, "click", 0, "a", "human"),
            (2, "click", 400, "a", "human"),
            (3, "click", 800, "a", "human"),
        ],
        set(),
        None,
        id="span-over-ten-minutes",
    ),
    pytest.param(  # Marketo proximity across the campaign
        [(1, "click", 30, "a", "human"), (2, "click", 30.4, "a", "human")],
        {0, 1},
        "campaign:same_second",
        id="same-second-two-recipients",
    ),
    pytest.param(  # already machine labels are left alone; self is never touched
        [
            (1, "click", 8, "a", "scanner"),
            (2, "click", 9, "a", "bot"),
            (3, "click", 10, "a", "self"),
            (4, "click", 11, "a", "human"),
        ],
        {3},
        "campaign:ip_many_recipients",
        id="only-human-labels-change",
    ),
    pytest.param(  # different sources do not add up
        [
            (1, "click", 8, "a", "human"),
            (2, "click", 9, "b", "human"),
            (3, "click", 10, "c", "human"),
        ],
        set(),
        None,
        id="different-sources",
    ),
]


@pytest.mark.parametrize(("rows", "relabelled", "reason"), CASES)
def test_campaign_relabel(
    rows: list[tuple[int, str, float, str, str]], relabelled: set[int], reason: str | None
) -> None:
    events = [_ev(i, *row) for i, row in enumerate(rows)]
    out = campaign_relabel(reversed(events))  # order of arrival does not matter
    assert {eid for eid, _, _ in out} == relabelled
    for _, label, reasons in out:
        assert label == "scanner" and reasons[0] == reason and "ua:browser" in reasons
