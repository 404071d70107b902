"""Is the pixel invisible? Render every real template before and after, in Chromium.

Every HTML file of the shared real-world corpus and every HTML part of its
messages is instrumented (pixel at the bottom and at the top, links tracked)
and rendered in Debian's Chromium at 600 and 1,200 px, full page, network
closed except for the pixel itself (a real transparent GIF). Each pair of
screenshots is compared pixel by pixel. Target (issue 11): identical, or at
most 1 px taller, everywhere; and the pixel loads in every render. Run:

    .venv/bin/python bench/pixel_render.py [--no-write] [--limit N]

Needs /usr/bin/chromium and Pillow (the test extra). Writes the figures into
docs/instrumenting.md between the ``<!-- bench:pixel-render -->`` markers. Takes a
few minutes: about 0.2 s per screenshot.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from _harness.report import write_section  # noqa: E402
from tests import realworld, render  # noqa: E402

from mailbeacon.instrument import instrument_eml, instrument_html  # noqa: E402
from mailbeacon.instrument.pixel import pixel_img  # noqa: E402

DOC = ROOT / "docs" / "instrumenting.md"
PIXEL = pixel_img(render.PIXEL_URL)


def track(url: str, position: int) -> str:
    return f"https://t.example.com/c/{position}"


def documents(limit: int | None) -> list[tuple[str, str, str, str]]:
    """(name, mode, before, after) for every HTML file and HTML message part."""
    out = []
    for mode in ("bottom", "top"):
        for path in realworld.html_files()[:limit]:
            src = path.read_bytes().decode("utf-8", "surrogateescape")
            res = instrument_html(src, track=track, pixel_html=PIXEL, pixel=mode, clicks="all")  # type: ignore[arg-type]
            out.append((path.name, mode, src, res.html))
        for path in realworld.eml_files()[:limit]:
            data = path.read_bytes()
            res_eml = instrument_eml(data, track=track, pixel_html=PIXEL, pixel=mode, clicks="all")  # type: ignore[arg-type]
            after = dict(realworld.html_part_texts(res_eml.eml))
            for ordinal, text in realworld.html_part_texts(data):
                if ordinal in after:
                    out.append((f"{path.name}#{ordinal}", mode, text.text, after[ordinal].text))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="files per folder (for a quick look)")
    args = ap.parse_args()
    if realworld.corpus_dir() is None:
        sys.exit(realworld.missing_reason())
    if not render.available():
        sys.exit(f"needs {render.CHROMIUM}")
    docs = documents(args.limit)
    results: Counter[tuple[str, str, int]] = Counter()  # (kind, mode, width) -> n
    bad: list[str] = []
    no_load: list[str] = []
    started = time.perf_counter()
    with render.browser() as b:
        for name, mode, before, after in docs:
            for width in render.WIDTHS:
                verdict, grew, loaded = render.before_after(b, before, after, width)
                if not loaded:
                    no_load.append(f"{name} ({mode}, {width} px)")
                kind = "eml" if "#" in name else "html"
                results[(kind, mode, width)] += 1
                if verdict != "same":
                    results[(verdict, mode, width)] += 1
                    bad.append(f"{name} ({mode}, {width} px): {verdict}, {grew:+d} px")
                    print(bad[-1], flush=True)
    took = time.perf_counter() - started
    files = len(realworld.html_files()[: args.limit])
    parts = sum(1 for name, mode, _, _ in docs if mode == "bottom" and "#" in name)
    renders = sum(v for (k, _, _), v in results.items() if k in ("html", "eml"))
    differs = sum(v for (k, _, _), v in results.items() if k == "differs")
    taller = sum(v for (k, _, _), v in results.items() if k == "one row")
    print(f"{renders} before/after pairs: {renders - differs - taller} identical, "
          f"{taller} one row taller, {differs} different; pixel not loaded in {len(no_load)}; "
          f"{took:.0f} s")  # fmt: skip
    if args.no_write:
        return
    rows = ["| pixel | width | pairs | identical | 1 px taller | different |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for mode in ("bottom", "top"):
        for width in render.WIDTHS:
            n = results[("html", mode, width)] + results[("eml", mode, width)]
            one, diff = results[("one row", mode, width)], results[("differs", mode, width)]
            rows.append(f"| {mode} | {width} px | {n} | {n - one - diff} | {one} | {diff} |")
    text = "\n".join(
        [
            "## Is the pixel invisible?",
            "",
            f"`bench/pixel_render.py`: {files} HTML templates and {parts} HTML parts of real "
            "messages from the shared corpus, instrumented (all links tracked) and rendered in "
            f"Chromium ({platform.machine()}, full page, network closed but for the pixel), "
            "compared pixel by pixel.",
            "",
            *rows,
            "",
            f"The pixel was requested in {renders - len(no_load)} of {renders} renders."
            + ("" if not bad else " Not identical: " + "; ".join(bad[:20]) + "."),
        ]
    )
    write_section("pixel-render", text, DOC)
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
