"""Instrumenting real HTML email: mailbeacon vs pytracking, emails per second.

The 60 KB / 30-link newsletter of tests/data, and the largest real templates
of the shared corpus (70-90 KB, tests/realworld.py; skipped, saying so, when
the corpus is absent). Target (docs/design.md): >= 1,000 emails/s on one core, for
both. Run:

    bench/setup                            # pytracking[html], the reference
    .venv/bin/python bench/instrument.py [--seconds 1.0] [--runs 7] [--no-write]

pytracking is the reference (``bench/setup`` installs it with the ``bench``
extra; not a project dependency, it pulls lxml). Its ``adapt_html`` parses
with lxml and re-serialises the document, then signs nothing (its default is
unsigned base64 URLs); we run it on the same files with click and open
tracking on. If it is not installed the reference is skipped and said so.

Each side is timed for ``--seconds`` per run, ``--runs`` times, pinned to
core 0 where the OS allows; the median run is reported, or with ``--best``
the fastest (on a shared, loaded machine the least disturbed run is the
better estimate of the cost; the load average is written down). The result refreshes
the "## Instrumenting" section of docs/benchmarks.md between the
``<!-- bench:instrument -->`` markers, leaving other sections alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from _harness.report import DOC, write_section  # noqa: E402
from tests import realworld  # noqa: E402

from mailbeacon.instrument import instrument_html, pixel_img  # noqa: E402

MAIL = ROOT / "tests" / "data" / "emails" / "newsletter-60k.html"
REAL = 7  # the largest templates of the corpus: 69-92 KB
BASE = "https://t.example.com"
PIXEL = pixel_img(f"{BASE}/o/AAAAAAAAAAAAAAAAAAAAAAAAAA.gif")
# A click token carries the destination, so real tracked URLs are long; 140
# characters is what tokens.py makes for a typical 100-character destination.
TOKEN = "A" * 120


def track(url: str, position: int) -> str:
    return f"{BASE}/c/{TOKEN}{position:03d}"


# Wall time by default. --cpu-time counts the CPU time of this process
# instead: on a machine shared with other work (a load average of 7 on 2
# cores during issue 11) wall time measures the neighbours, CPU time still
# measures the code.
CLOCK: Callable[[], float] = time.perf_counter


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up caches and compiled patterns
    n = 0
    start = CLOCK()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = CLOCK()
        if now >= deadline:
            return n / (now - start)


def median_rate(fn: Callable[[], object], seconds: float, runs: int, best: bool = False) -> float:
    rates = [rate(fn, seconds) for _ in range(runs)]
    return max(rates) if best else statistics.median(rates)


def pytracking_fn(html: str) -> Callable[[], object] | None:
    try:
        import pytracking
        from pytracking.html import adapt_html
    except ImportError:
        return None
    config = pytracking.Configuration(
        base_open_tracking_url=f"{BASE}/o/", base_click_tracking_url=f"{BASE}/c/"
    )

    def run() -> object:
        return adapt_html(
            html, extra_metadata={"message_id": 1}, click_tracking=True,
            open_tracking=True, configuration=config,
        )  # fmt: skip

    return run


def measure(path: Path, seconds: float, runs: int, best: bool) -> dict[str, object]:
    html = path.read_bytes().decode("utf-8", "surrogateescape")
    res = instrument_html(html, track=track, pixel_html=PIXEL)
    ours = median_rate(
        lambda: instrument_html(html, track=track, pixel_html=PIXEL), seconds, runs, best
    )
    ref_fn = pytracking_fn(html)
    ref = median_rate(ref_fn, seconds, runs, best) if ref_fn else None
    row = {"name": path.name, "kb": len(html.encode("utf-8", "surrogateescape")) / 1000,
           "links": len(res.links), "ours": ours, "ref": ref}  # fmt: skip
    ratio = f", {ours / ref:.1f}x pytracking ({ref:,.0f}/s)" if ref else ""
    print(f"{path.name}: {row['kb']:.1f} KB, {len(res.links)} links: {ours:,.0f} emails/s{ratio}")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--best", action="store_true", help="report the fastest run, not the median")
    ap.add_argument("--cpu-time", action="store_true", help="per CPU second, not wall second")
    ap.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    pinned = False
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {args.cpu})
            pinned = True
        except OSError:
            pass
    if pytracking_fn("<p>x</p>") is None:
        print(
            "pytracking not installed: bench/setup (or pip install -e '.[bench]') for the reference"
        )
    files = [MAIL] + realworld.largest_html(REAL)
    if realworld.corpus_dir() is None:
        print(realworld.missing_reason(), "- only the newsletter is measured")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [measure(f, args.seconds, args.runs, args.best) for f in files]
    if args.no_write:
        return
    table = [
        "| mail | KB | tracked links | mailbeacon emails/s | per email | pytracking emails/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ours, ref = float(r["ours"]), r["ref"]  # type: ignore[arg-type]
        refcol = f"{float(ref):,.0f} | {ours / float(ref):.1f}x" if ref else "- | -"  # type: ignore[arg-type]
        table.append(
            f"| `{r['name']}` | {float(r['kb']):.1f} | {r['links']} | {ours:,.0f} | "  # type: ignore[arg-type]
            f"{1e6 / ours:.0f} µs | {refcol} |"
        )
    slowest = min(float(r["ours"]) for r in rows)  # type: ignore[arg-type]
    verdict = "meets" if slowest >= 1000 else "MISSES"
    if slowest < 1000 and load > (os.cpu_count() or 1):
        # Other work shares the cores and their caches: even CPU time runs
        # slow (1.5x on the newsletter at load 9 on 2 cores). A miss is then
        # no verdict; a pass still is one.
        verdict = f"not judged, the machine was loaded ({load:.1f} on {os.cpu_count()} cores)"
    ratios = [float(r["ours"]) / float(r["ref"]) for r in rows if r["ref"]]  # type: ignore[arg-type]
    text = "\n".join(
        [
            "## Instrumenting",
            "",
            f"`bench/instrument.py`: the 60 KB newsletter of tests/data (MSO/VML buttons) and the "
            f"{len(rows) - 1} largest real templates of the shared corpus, default mode (safe), "
            f"{'best' if args.best else 'median'} of {args.runs} runs of {args.seconds:g} s, "
            f"one core{' (CPU time)' if args.cpu_time else ''}"
            f"{' (pinned)' if pinned else ''}, Python {platform.python_version()} on "
            f"{platform.machine()}, load average {load:.1f} when it started.",
            "",
            *table,
            "",
            f"Target >= 1,000 emails/s: {verdict} (slowest {slowest:,.0f}/s)."
            + (
                f" Ratio to pytracking {min(ratios):.1f}x to {max(ratios):.1f}x. "
                if ratios
                else " "
            )
            + "pytracking re-serialises the document through lxml; mailbeacon splices the "
            "original text and keeps every other byte.",
        ]
    )
    write_section("instrument", text)
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
