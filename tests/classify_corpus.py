"""Run the labelled corpus through classify() and print precision/recall per label.

Run from the repository root: .venv/bin/python -m tests.classify_corpus
The corpus is tests/data/classify/{opens,clicks}.tsv; each row gives the
true label, a reason code the verdict must carry, the hit, and its source.
Rows marked ``limit`` are cases the rules cannot tell apart (their truth
differs from what any rule here can see); they are kept so the table is
honest. tests/test_classify.py imports this module; it lives with the tests
(bench/ may import it from here, never the reverse).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailbeacon.classify import Context, Verdict, classify
from mailbeacon.classify.networks import NetworkSet
from mailbeacon.model import Event, Kind, MessageInfo

DATA = Path(__file__).resolve().parent / "data"
SENT = 1_700_000_000.0
HONEYPOT = 3


@dataclass(frozen=True)
class Case:
    kind: Kind
    truth: str
    reason: str
    ua: str
    ip: str
    method: str
    secs: float | None
    flags: frozenset[str]
    limit: bool
    source: str

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.truth}:{self.reason}:{self.ip}:{self.secs}"


def load_cases() -> list[Case]:
    cases = []
    for kind in (Kind.OPEN, Kind.CLICK):
        path = DATA / "classify" / f"{kind.value}s.tsv"
        with path.open(newline="") as fh:
            rows = csv.reader(
                (ln for ln in fh if not ln.startswith("#")), delimiter="\t", quoting=csv.QUOTE_NONE
            )
            for truth, reason, ua, ip, method, secs, flags, limit, source in rows:
                cases.append(
                    Case(
                        kind,
                        truth,
                        reason,
                        ua,
                        ip,
                        method,
                        float(secs) if secs else None,
                        frozenset(f for f in flags.split(",") if f),
                        limit == "1",
                        source,
                    )
                )
    return cases


def corpus_networks() -> NetworkSet:
    ns = NetworkSet.builtin()
    ns.load("apple_egress", DATA / "networks" / "egress-ip-ranges.csv", "apple_csv")
    ns.build()
    return ns


def build(case: Case, networks: NetworkSet) -> tuple[Event, Context]:
    at = SENT + (case.secs or 0.0)
    msg = None
    if case.secs is not None:
        if "no_sent_at" in case.flags:
            msg = MessageInfo(1, 7, None, SENT, link_count=4, honeypot_position=HONEYPOT)
        else:
            msg = MessageInfo(1, 7, SENT, SENT - 600, link_count=4, honeypot_position=HONEYPOT)
    ev = Event(
        message_id=1,
        kind=case.kind,
        at=at,
        method=case.method,
        ip=case.ip,
        user_agent=case.ua,
        ip_hash="h-" + case.ip,
        link_position=(HONEYPOT if "honeypot" in case.flags else 1)
        if case.kind == Kind.CLICK
        else None,
        token_flags=("mutated",) if "mutated" in case.flags else (),
    )
    ctx = Context(
        message=msg,
        networks=networks,
        now=at,
        sender_cookie="cookie" in case.flags,
        sender_ips=frozenset({case.ip}) if "sender_ip" in case.flags else frozenset(),
        campaign_recent_clicks={ev.ip_hash: {2, 3, 4, 5}} if "campaign" in case.flags else {},
    )
    return ev, ctx


def run(cases: list[Case]) -> Iterator[tuple[Case, Verdict]]:
    ns = corpus_networks()
    for c in cases:
        ev, ctx = build(c, ns)
        yield c, classify(ev, ctx)


def table(results: list[tuple[Case, Verdict]]) -> str:
    lines = [
        "| kind | label | n (truth) | predicted | correct | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in (Kind.OPEN, Kind.CLICK):
        rs = [(c.truth, v.label) for c, v in results if c.kind == kind]
        truth = Counter(t for t, _ in rs)
        pred = Counter(p for _, p in rs)
        ok = Counter(t for t, p in rs if t == p)
        for label in sorted(set(truth) | set(pred)):
            p = f"{ok[label] / pred[label]:.2f}" if pred[label] else "-"
            r = f"{ok[label] / truth[label]:.2f}" if truth[label] else "-"
            lines.append(
                f"| {kind.value} | {label} | {truth[label]} | {pred[label]} | "
                f"{ok[label]} | {p} | {r} |"
            )
        acc = sum(ok.values()) / len(rs)
        lines.append(
            f"| {kind.value} | **all** | {len(rs)} | | {sum(ok.values())} | accuracy {acc:.2f} | |"
        )
    return "\n".join(lines)


def main() -> None:
    results = list(run(load_cases()))
    print(table(results))
    misses = [(c, v) for c, v in results if c.truth != v.label]
    print(
        f"\n{len(misses)} of {len(results)} mislabelled "
        f"({sum(c.limit for c, _ in misses)} of them known limits):"
    )
    for c, v in misses:
        print(f"  {c.kind.value} truth={c.truth} got={v.label} {v.reasons}  <- {c.source}")


if __name__ == "__main__":
    main()
