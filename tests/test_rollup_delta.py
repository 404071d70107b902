"""rollups.delta, the pure middle of every batch's counting: table-driven, in process.

Each case folds events into a message's counters and checks what a report
would then say; every case also checks that removing the same events (a
relabel's first half) brings everything back to zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from mailbeacon.model import Event, Kind
from mailbeacon.store import rollups

SENT = 1_000_000.0


def _state(sent_at: float | None = SENT, variant: str = "") -> dict[int, dict[str, Any]]:
    st: dict[str, Any] = {c: 0 for c in rollups.LABEL_COLS}
    st |= {c: None for c in rollups.TIME_COLS}
    st |= {"replied_at": None, "replies": 0, "auto_replies": 0, "bounced": 0}
    st |= {"message_id": 1, "campaign_id": 7, "variant": variant, "sent_at": sent_at}
    return {1: st}


def _ev(kind: Kind, label: str, at: float, pos: int | None = None, **kw: Any) -> Event:
    return Event(1, kind, at, "GET", "", "", link_position=pos, label=label, **kw)


def _nonzero(counts: dict[tuple[int, str, str], int]) -> dict[str, int]:
    return {f"{dim}:{key}": n for (_c, dim, key), n in counts.items() if n}


OPEN_PERSON = _ev(Kind.OPEN, "human_direct", SENT + 600, client="Thunderbird", os="Linux")
PREFETCH = _ev(Kind.OPEN, "machine_prefetch", SENT + 5)
SCAN_CLICK = _ev(Kind.CLICK, "scanner", SENT + 2, pos=1)
PERSON_CLICK = _ev(Kind.CLICK, "human", SENT + 700, pos=1)
REPLY = Event(1, Kind.REPLY, SENT + 900, "IMAP", "", "", label="human")

CASES: list[tuple[str, Sequence[Event], dict[str, int], list[str]]] = [
    (
        "a person's first open opens the message, once, with its time to open",
        [OPEN_PERSON, replace(OPEN_PERSON, at=SENT + 800)],
        {"unique:opened": 1, "unique:human_open": 1, "unique:opened_or_auto": 1,
         "ttfo:5-30m": 1, "client:Thunderbird": 2, "os:Linux": 2,
         "first_open:277": 1},  # SENT + 600 s is in unix hour 277
        ["opened", "opened_or_auto", "human_open"],
    ),
    (
        "an earlier open arriving late moves the first open to its hour",
        [replace(OPEN_PERSON, at=SENT + 4000), OPEN_PERSON],
        {"unique:opened": 1, "unique:human_open": 1, "unique:opened_or_auto": 1,
         "ttfo:30m-2h": 1, "client:Thunderbird": 2, "os:Linux": 2, "first_open:277": 1},
        ["opened", "opened_or_auto", "human_open"],
    ),
    (
        "a prefetch is a machine's, never an open",
        [PREFETCH],
        {"unique:machine": 1, "unique:opened_or_auto": 1},
        ["machine", "opened_or_auto"],
    ),
    (
        "a scanner's click counts beside the link, not as a person",
        [SCAN_CLICK],
        {"link:1:other": 1, "unique:scanned": 1},
        ["scanned"],
    ),
    (
        "two clicks by a person on one link: two clicks, one person, an implied open",
        [PERSON_CLICK, replace(PERSON_CLICK, at=SENT + 760)],
        {"link:1:total": 2, "link:1:unique": 1, "unique:clicked": 1, "unique:opened": 1,
         "unique:opened_or_auto": 1, "ttfo:5-30m": 1},
        ["opened", "clicked", "opened_or_auto"],
    ),
    (
        "a reply without an open opens the message and says so",
        [REPLY],
        {"unique:replied": 1, "unique:opened": 1, "unique:opened_by_reply": 1,
         "unique:opened_or_auto": 1, "ttfo:5-30m": 1},
        ["opened", "opened_or_auto", "replied"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("story", "events", "want", "flags"), CASES, ids=[c[0] for c in CASES])
def test_delta_counts_what_a_report_says(
    story: str, events: Sequence[Event], want: dict[str, int], flags: list[str]
) -> None:
    state, links = _state(), {}
    counts, transitions, _ = rollups.delta(state, links, [(e, 1) for e in events])
    got = {k: v for k, v in _nonzero(counts).items() if not k.startswith(("label:", "hour:"))}
    assert got == want, story
    assert [flag for _e, flag, on in transitions if on] == flags
    # Taking the same events back out (a relabel's first half) undoes all of it.
    undo, back, _ = rollups.delta(state, links, [(e, -1) for e in reversed(events)])
    assert all(counts[k] + undo.get(k, 0) == 0 for k in counts), story
    assert {flag for _e, flag, on in back if not on} == set(flags)
    # ... except the "last seen" times, which only move forward (a relabel
    # adds the event back at once; a report's "last activity" is when it was).
    moving = ("last_event_at", "last_human_at")
    left = {k: v for k, v in state[1].items() if k not in moving}
    assert left == {k: v for k, v in _state()[1].items() if k not in moving}, story


def test_relabelling_a_click_from_person_to_scanner_moves_every_count() -> None:
    state, links = _state(variant="B"), {}
    rollups.delta(state, links, [(PERSON_CLICK, 1)])
    counts, transitions, touched = rollups.delta(
        state, links, [(PERSON_CLICK, -1), (replace(PERSON_CLICK, label="scanner"), 1)]
    )
    assert _nonzero(counts) | {} == {
        "label:click:human": -1,
        "label:click:scanner": 1,
        f"hour:{int(PERSON_CLICK.at // 3600)}:c:h": -1,
        f"hour:{int(PERSON_CLICK.at // 3600)}:c:s": 1,
        "link:1:total": -1,
        "link:1:unique": -1,
        "link:1:other": 1,
        "unique:opened": -1,
        "unique:clicked": -1,
        "unique:opened_or_auto": -1,
        "unique:scanned": 1,
        "variant:B\x1fopened": -1,
        "variant:B\x1fclicked": -1,
        "ttfo:5-30m": -1,
    }
    assert touched == {(1, 1)} and links[(1, 1)] == [0, 1]
    st = state[1]
    assert st["opened_at"] is None and st["first_human_click_at"] is None
    assert {(flag, on) for _e, flag, on in transitions} == {
        ("opened", False), ("clicked", False), ("opened_or_auto", False), ("scanned", True)
    }  # fmt: skip


def test_an_erased_message_counts_nothing() -> None:
    counts, transitions, touched = rollups.delta({}, {}, [(OPEN_PERSON, 1), (SCAN_CLICK, 1)])
    assert not _nonzero(counts) and not transitions and not touched
