"""Scoring for the classification evaluation (tests/classify_eval.py).

Pure functions over (expected, got) pairs: per-label precision/recall for
opens and clicks separately, exact accuracy, and "human vs machine" accuracy
where a hit counts as human when its label is human_direct, human_via_proxy
or human, and as machine for every other label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mailbeacon.store import schema

# The label strings are an interface (docs/design.md): one vocabulary, the store's.
OPEN_LABELS = schema.OPEN_LABELS
CLICK_LABELS = schema.CLICK_LABELS
HUMAN_LABELS = frozenset({"human_direct", "human_via_proxy", "human"})


@dataclass(frozen=True)
class Outcome:
    """One replayed hit: what the corpus says it is and what the server said."""

    case: str
    index: int  # position of the hit in its case, from 0
    kind: str  # "open" | "click"
    expected: str
    got: str | None  # None when the hit was never labelled
    reasons: tuple[str, ...] = ()
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.got == self.expected

    @property
    def side_right(self) -> bool:
        """Human vs machine: right when both labels fall on the same side."""
        return (self.expected in HUMAN_LABELS) == (self.got in HUMAN_LABELS)


@dataclass
class LabelScore:
    label: str
    support: int  # hits the corpus gives this label
    predicted: int  # hits the server gave this label
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass
class Score:
    hits: int
    exact: float
    opens_exact: float
    clicks_exact: float
    human_vs_machine: float
    humans_called_machine: int  # expected human, got anything else
    machines_called_human: int
    open_labels: list[LabelScore] = field(default_factory=list)
    click_labels: list[LabelScore] = field(default_factory=list)
    misses: list[Outcome] = field(default_factory=list)


def _ratio(n: int, d: int) -> float:
    return n / d if d else 1.0


def _per_label(outcomes: list[Outcome], labels: tuple[str, ...]) -> list[LabelScore]:
    seen = labels + tuple(
        sorted({o.got for o in outcomes if o.got and o.got not in labels})
    )  # a label outside the vocabulary still gets a row: it is a bug worth seeing
    return [
        LabelScore(
            label=label,
            support=sum(o.expected == label for o in outcomes),
            predicted=sum(o.got == label for o in outcomes),
            correct=sum(o.expected == label and o.got == label for o in outcomes),
        )
        for label in seen
    ]


def score(outcomes: list[Outcome]) -> Score:
    opens = [o for o in outcomes if o.kind == "open"]
    clicks = [o for o in outcomes if o.kind == "click"]
    return Score(
        hits=len(outcomes),
        exact=_ratio(sum(o.exact for o in outcomes), len(outcomes)),
        opens_exact=_ratio(sum(o.exact for o in opens), len(opens)),
        clicks_exact=_ratio(sum(o.exact for o in clicks), len(clicks)),
        human_vs_machine=_ratio(sum(o.side_right for o in outcomes), len(outcomes)),
        humans_called_machine=sum(
            o.expected in HUMAN_LABELS and o.got not in HUMAN_LABELS for o in outcomes
        ),
        machines_called_human=sum(
            o.expected not in HUMAN_LABELS and o.got in HUMAN_LABELS for o in outcomes
        ),
        open_labels=_per_label(opens, OPEN_LABELS),
        click_labels=_per_label(clicks, CLICK_LABELS),
        misses=[o for o in outcomes if not o.exact],
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def label_table(rows: list[LabelScore]) -> list[str]:
    out = [
        "| label | in corpus | labelled so | right | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| `{r.label}` | {r.support} | {r.predicted} | {r.correct} "
            f"| {_pct(r.precision)} | {_pct(r.recall)} |"
        )
    return out


def render(s: Score, *, misses: bool = True) -> str:
    """The report as Markdown (also readable in a terminal)."""
    lines = [
        f"hits: {s.hits}",
        f"exact: {_pct(s.exact)} (opens {_pct(s.opens_exact)}, clicks {_pct(s.clicks_exact)})",
        f"human vs machine: {_pct(s.human_vs_machine)} "
        f"(humans labelled machine: {s.humans_called_machine}, "
        f"machines labelled human: {s.machines_called_human})",
        "",
        "Opens",
        "",
        *label_table(s.open_labels),
        "",
        "Clicks",
        "",
        *label_table(s.click_labels),
    ]
    if misses and s.misses:
        lines += ["", f"Misses ({len(s.misses)})", ""]
        for m in s.misses:
            why = ", ".join(m.reasons) or "-"
            lines.append(
                f"- {m.case}#{m.index} {m.kind}: expected `{m.expected}`, got `{m.got}` ({why})"
            )
    return "\n".join(lines)


def as_json(s: Score) -> dict[str, Any]:
    def labels(rows: list[LabelScore]) -> list[dict[str, Any]]:
        return [{**asdict(r), "precision": r.precision, "recall": r.recall} for r in rows]

    return {
        "hits": s.hits,
        "exact": s.exact,
        "opens_exact": s.opens_exact,
        "clicks_exact": s.clicks_exact,
        "human_vs_machine": s.human_vs_machine,
        "humans_called_machine": s.humans_called_machine,
        "machines_called_human": s.machines_called_human,
        "open_labels": labels(s.open_labels),
        "click_labels": labels(s.click_labels),
        "misses": [asdict(m) for m in s.misses],
    }
