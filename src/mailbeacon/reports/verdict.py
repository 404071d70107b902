"""A/B verdicts in words, from the variant rows of ``campaign.variant_rows``.

One place says what the numbers mean, so the API (``verdict`` per variant,
``variants_verdict`` for the campaign), the dashboard and ``mailbeacon
report`` say the same thing. Pure: rows in, sentences out.

The campaign sentence compares the variant with the best open rate against
the runner-up (the same pair as its ``p_value``). A winner is named only
when ``winner`` is set (p below stats.SIGNIFICANCE); otherwise it says why
not, with the numbers, and how many messages per variant would show a gap
of the observed size (stats.sample_size: 80 % power).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mailbeacon.reports import stats


def percent(part: int, whole: int) -> str:
    """42% (whole percents: the counts beside it carry the precision)."""
    return f"{round(100 * part / whole)}%" if whole > 0 else "0%"


def p_words(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def about(n: int) -> str:
    """A sample size rounded up to two significant figures: 736 -> "740"."""
    if n > stats.MAX_SAMPLE:
        return f"over {stats.MAX_SAMPLE:,}"
    if n >= 100:
        step = 10 ** (len(str(n)) - 2)
        n = math.ceil(n / step) * step
    return f"{n:,}"


def _counts(row: dict[str, Any]) -> str:
    return f"{percent(row['opened'], row['messages'])} ({row['opened']} of {row['messages']})"


def _named(row: dict[str, Any]) -> str:
    subject = row.get("subject")
    return f"{row['variant']} (“{subject}”)" if subject else str(row["variant"])


def variant_verdict(row: dict[str, Any], variants: int) -> str:
    """The verdict cell for one variant row, e.g. "more opens than B (p = 0.012)"."""
    if row["messages"] <= 0:
        return "no messages"
    if variants < 2:
        return "nothing to compare it with"
    p, vs = row["p_value"], row["vs"]
    if row["winner"]:
        words = f"more opens than {vs} ({p_words(p)})"
    elif vs is not None and p < stats.SIGNIFICANCE:
        words = f"fewer opens than {vs} ({p_words(p)})"
    elif row["opened"] == 0 and p >= 1.0:
        words = "no opens yet"
    elif row["small_sample"]:
        words = f"too few messages to tell ({p_words(p)})"
    else:
        words = f"no clear difference from {vs} ({p_words(p)})"
    if row.get("click_winner"):
        words += f"; more clicks than {row['click_vs']} ({p_words(row['click_p_value'])})"
    return words


def variants_verdict(rows: Sequence[dict[str, Any]]) -> str | None:
    """The campaign's A/B sentence, or None when it has no variants."""
    live = [r for r in rows if r["messages"] > 0]
    if not live:
        return None
    if len(live) == 1:
        return f"Only one variant so far ({_named(live[0])}): nothing to compare it with."
    ranked = sorted(live, key=lambda r: (-r["open_rate"], -r["messages"], r["variant"]))
    top, second = ranked[0], ranked[1]
    if not any(r["opened"] for r in live):
        each = ", ".join(f"{r['variant']} 0 of {r['messages']}" for r in ranked)
        return f"No winner yet: nobody has opened any variant ({each})."
    rest = ", ".join(f"{r['variant']} {_counts(r)}" for r in ranked[1:])
    if top["winner"]:
        text = (
            f"Winner: {_named(top)} opened {_counts(top)}, against {rest} "
            f"({p_words(top['p_value'])}, below {stats.SIGNIFICANCE})."
        )
        if top["small_sample"]:
            text += " Fewer than 5 opens or non-opens in a group: confirm with more mail."
        return text
    seen = f"No winner yet: {top['variant']} opened {_counts(top)}, {rest}"
    if top["opened"] * second["messages"] == second["opened"] * top["messages"]:
        return f"{seen}; the same rate, nothing tells them apart."
    seen += f"; a gap this size could be chance ({p_words(top['p_value'])})."
    r1, r2 = top["opened"] / top["messages"], second["opened"] / second["messages"]
    need = stats.sample_size(r1, r2)
    if need > stats.MAX_SAMPLE:
        most = f"{stats.MAX_SAMPLE:,}"
        return f"{seen} Even {most} messages per variant might not show a gap this small."
    if need <= min(top["messages"], second["messages"]):
        return f"{seen} More messages would tell whether it holds."
    return f"{seen} About {about(need)} messages per variant would show it."
