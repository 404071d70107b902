"""The A/B verdict in words (reports/verdict.py) and the sample size behind
"About N messages per variant would show it" (reports/stats.sample_size)."""

from __future__ import annotations

import pytest

from mailbeacon.reports import stats, verdict
from mailbeacon.reports.campaign import variant_rows

SEP = "\x1f"


def rows(*groups: tuple[str, int, int], subjects: dict[str, str] | None = None) -> list[dict]:  # type: ignore[type-arg]
    """variant_rows from (variant, messages, opened) as the counters hold them."""
    counters = {}
    for name, n, opened in groups:
        counters[f"{name}{SEP}messages"] = n
        counters[f"{name}{SEP}opened"] = opened
    subj = {f"{k}{SEP}{v}": 1 for k, v in (subjects or {}).items()}
    return variant_rows(counters, subj)


@pytest.mark.parametrize(
    ("groups", "subjects", "sentence"),
    [
        # Significant: the winner, its subject, both rates, p.
        (
            [("A", 400, 120), ("B", 400, 80)],
            {"A": "Spring offer: 20% off", "B": "Last chance"},
            "Winner: A (“Spring offer: 20% off”) opened 30% (120 of 400), against B 20% "
            "(80 of 400) (p = 0.0011, below 0.05).",
        ),
        # The winner need not be listed first.
        (
            [("A", 400, 80), ("B", 400, 120)],
            {},
            "Winner: B opened 30% (120 of 400), against A 20% (80 of 400) "
            "(p = 0.0011, below 0.05).",
        ),
        # Significant on few non-opens: named, with a warning.
        (
            [("A", 20, 19), ("B", 20, 8)],
            {},
            "Winner: A opened 95% (19 of 20), against B 40% (8 of 20) (p < 0.001, below "
            "0.05). Fewer than 5 opens or non-opens in a group: confirm with more mail.",
        ),
        # Not significant: why, and how many would show it (736 -> about 740).
        (
            [("A", 19, 8), ("B", 20, 7)],
            {},
            "No winner yet: A opened 42% (8 of 19), B 35% (7 of 20); a gap this size "
            "could be chance (p = 0.65). About 740 messages per variant would show it.",
        ),
        # Three variants: the best against the runner-up, all rates listed.
        (
            [("A", 50, 10), ("B", 50, 14), ("C", 50, 5)],
            {},
            "No winner yet: B opened 28% (14 of 50), A 20% (10 of 50), C 10% (5 of 50); "
            "a gap this size could be chance (p = 0.35). About 450 messages per variant "
            "would show it.",
        ),
        # A tiny gap: no audience would settle it.
        (
            [("A", 5000, 1001), ("B", 5000, 1000)],
            {},
            "No winner yet: A opened 20% (1001 of 5000), B 20% (1000 of 5000); a gap this "
            "size could be chance (p = 0.98). Even 100,000 messages per variant might not "
            "show a gap this small.",
        ),
        # Unequal groups: messages per variant, for equal groups.
        (
            [("A", 300, 75), ("B", 100, 16)],
            {},
            "No winner yet: A opened 25% (75 of 300), B 16% (16 of 100); a gap this size "
            "could be chance (p = 0.063). About 320 messages per variant would show it.",
        ),
        # Equal rates: nothing to compute.
        (
            [("A", 20, 8), ("B", 10, 4)],
            {},
            "No winner yet: A opened 40% (8 of 20), B 40% (4 of 10); the same rate, "
            "nothing tells them apart.",
        ),
        # No opens at all.
        (
            [("A", 19, 0), ("B", 20, 0)],
            {},
            "No winner yet: nobody has opened any variant (B 0 of 20, A 0 of 19).",
        ),
        # One variant.
        (
            [("A", 19, 5)],
            {"A": "Hello"},
            "Only one variant so far (A (“Hello”)): nothing to compare it with.",
        ),
    ],
)
def test_campaign_sentence(
    groups: list[tuple[str, int, int]], subjects: dict[str, str], sentence: str
) -> None:
    assert verdict.variants_verdict(rows(*groups, subjects=subjects)) == sentence


def test_enough_messages_but_no_winner_asks_for_more() -> None:
    """Both groups already hold the messages the formula asks for (it plans
    for 80 % power: one run in five misses a real gap): no number then."""
    a, b = rows(("A", 400, 120), ("B", 400, 80))
    a |= {"winner": False, "p_value": 0.07}  # as if this run had missed
    assert verdict.variants_verdict([a, b]) == (
        "No winner yet: A opened 30% (120 of 400), B 20% (80 of 400); a gap this size "
        "could be chance (p = 0.07). More messages would tell whether it holds."
    )


def test_no_variants_no_sentence() -> None:
    assert verdict.variants_verdict([]) is None
    assert verdict.variants_verdict(rows(("A", 0, 0))) is None


@pytest.mark.parametrize(
    ("groups", "cells"),
    [
        (
            [("A", 400, 120), ("B", 400, 80)],
            ["more opens than B (p = 0.0011)", "fewer opens than A (p = 0.0011)"],
        ),
        (
            [("A", 19, 8), ("B", 20, 7)],
            ["no clear difference from B (p = 0.65)", "no clear difference from A (p = 0.65)"],
        ),
        (
            [("A", 6, 4), ("B", 6, 2)],
            ["too few messages to tell (p = 0.25)", "too few messages to tell (p = 0.25)"],
        ),
        ([("A", 6, 0), ("B", 6, 0)], ["no opens yet", "no opens yet"]),
        ([("A", 6, 3)], ["nothing to compare it with"]),
    ],
)
def test_verdict_per_variant(groups: list[tuple[str, int, int]], cells: list[str]) -> None:
    assert [r["verdict"] for r in rows(*groups)] == cells


def test_click_winner_is_added_to_the_cell() -> None:
    counters = {f"A{SEP}messages": 400, f"A{SEP}opened": 100, f"A{SEP}clicked": 60,
                f"B{SEP}messages": 400, f"B{SEP}opened": 100, f"B{SEP}clicked": 20}  # fmt: skip
    a, _ = variant_rows(counters)
    assert a["verdict"].startswith("no clear difference from B (p = 1)")
    assert a["verdict"].endswith("; more clicks than B (p < 0.001)")


@pytest.mark.parametrize(
    ("p1", "p2", "n"),
    [
        (0.3, 0.2, 294),  # Fleiss 4.14 without correction; G*Power gives 294 too
        (0.2, 0.3, 294),  # symmetric
        (0.5, 0.6, 388),
        (8 / 19, 7 / 20, 736),
        (0.4, 0.4, 0),  # no gap: nothing to find
        (0.0, 0.0, 0),
        (0.0, 1.0, 2),
        (0.201, 0.2, stats.MAX_SAMPLE + 1),  # capped
    ],
)
def test_sample_size(p1: float, p2: float, n: int) -> None:
    assert stats.sample_size(p1, p2) == n


@pytest.mark.parametrize(
    ("n", "words"),
    [(7, "7"), (99, "99"), (294, "300"), (736, "740"), (12_301, "13,000"),
     (100_001, "over 100,000")],
)  # fmt: skip
def test_about(n: int, words: str) -> None:
    assert verdict.about(n) == words


@pytest.mark.parametrize(
    ("p", "words"), [(0.6449, "p = 0.64"), (0.05, "p = 0.05"), (0.0011, "p = 0.0011"),
                     (0.0004, "p < 0.001"), (1.0, "p = 1")],
)  # fmt: skip
def test_p_words(p: float, words: str) -> None:
    assert verdict.p_words(p) == words
