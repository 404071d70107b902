#!/usr/bin/env python3
"""The pixel path without an HTTP server: our handler, labeller and writer only.

Calls the ASGI app directly, 64 hits in flight like wrk -c64, pinned to one
core with a real SQLite file (synchronous=FULL), and prints durable hits/s,
us/hit and the writer's share. Comparing this with bench/pixel separates what
the HTTP server costs from what mailbeacon costs.

    .venv/bin/python bench/hotpath.py [--hits 20000] [--no-label] [--sqlite-sync normal]
    .venv/bin/python bench/hotpath.py --record

``--record`` appends a row (date, commit, hits/s, us/hit, setup, machine) to the
history table in docs/benchmarks.md (``<!-- bench:hotpath-history -->``), so the
hot path's speed is kept with the commit it was measured on: run it on the
commit you are about to hand in and compare with the rows above yours.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness.report import append_row, code_under_test, machine

HISTORY = "hotpath-history"
HISTORY_HEAD = """## Hot path in process, over time

`bench/hotpath.py --record` appends one row per run: the pixel path through the
ASGI app without an HTTP server (64 hits in flight, one pinned core, a real
SQLite file), the median of the runs. The machine is shared and noisy (+-30 %
from run to run, and far more when others load it: "load" is the 1-minute load
average when the run started, on 2 cores). Compare rows measured on the same
machine at a low load, and re-run before reading a drop as a regression.

| date (UTC) | commit | hits/s | us/hit | setup | load | machine |
|---|---|---:|---:|---|---:|---|"""

UA = b"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"


def run_once(hits: int, work: Path) -> tuple[float, float]:
    """One run in a fresh database: (hits/s, writer seconds per event)."""
    from mailbeacon import config, metrics
    from mailbeacon.messages import create_message
    from mailbeacon.node import Node
    from mailbeacon.store import make_engine, upgrade
    from mailbeacon.web.app import build

    # The plain pixel path: a Thunderbird hit is human_direct, and with read
    # time on it would stream for read_time_cap (bench/readtime.py measures that).
    settings = config.load(
        db=f"sqlite:///{work / 'hot.db'}",
        base_url="http://t",
        read_time=False,
        data_dir=str(work),  # the IP-hash key file goes here, not into the user's data dir
    )
    engine = make_engine(settings.database_url, sqlite_sync=settings.sqlite_sync)
    upgrade(engine)
    node = Node(settings, engine)
    node.prepare()
    with engine.begin() as conn:
        msg = create_message(
            conn, node.signer(), "http://t", recipient="a@example.org", sent_at=time.time() - 3600
        )
    path = msg["open_url"].split("http://t", 1)[1]
    app = build(settings, node)
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "client": ("198.51.100.7", 5555),
        "headers": [(b"host", b"t"), (b"user-agent", UA), (b"accept", b"image/*")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_msg: dict[str, Any]) -> None:
        return None

    async def main() -> float:
        await node.start()
        started = time.perf_counter()
        for _ in range(hits // 64):
            await asyncio.gather(*(app(dict(scope), receive, send) for _ in range(64)))
        took = time.perf_counter() - started
        await node.stop()
        return took

    before = metrics.render().decode()
    took = asyncio.run(main())
    after = metrics.render().decode()

    def total(text: str, name: str) -> float:
        m = re.search(rf"^{name} ([\d.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    commit = total(after, "mailbeacon_commit_seconds_sum") - total(
        before, "mailbeacon_commit_seconds_sum"
    )
    events = total(after, "mailbeacon_batch_size_sum") - total(before, "mailbeacon_batch_size_sum")
    engine.dispose()
    return (hits // 64 * 64) / took, commit / max(events, 1)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hits", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-label", action="store_true", help="MAILBEACON_CLASSIFY=false")
    ap.add_argument("--sqlite-sync", choices=("full", "normal"), default="full")
    ap.add_argument(
        "--record",
        action="store_true",
        help="append the median to the history table in docs/benchmarks.md",
    )
    args = ap.parse_args()
    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()[0]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core, like the server in bench/pixel
    os.environ["MAILBEACON_SQLITE_SYNC"] = args.sqlite_sync
    if args.no_label:
        os.environ["MAILBEACON_CLASSIFY"] = "false"
    import uvloop

    uvloop.install()
    rates, writer = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            rate, per_event = run_once(args.hits, Path(tmp))
        rates.append(rate)
        writer.append(per_event)
        print(f"  {rate:,.0f} hits/s, writer {per_event * 1e6:.1f} us/event", flush=True)
    rate = statistics.median(rates)
    code = code_under_test()
    print(
        f"median {rate:,.0f} durable hits/s in process "
        f"({1e6 / rate:.1f} us/hit), writer "
        f"{statistics.median(writer) * 1e6:.1f} us/event (incl. fsync); commit {code}, "
        f"load {load:.1f}"
    )
    if args.record:
        setup = (
            f"SQLite {args.sqlite_sync.upper()}, {'labelling off' if args.no_label else 'labelled'}, "
            f"{args.repeat} x {args.hits // 64 * 64:,} hits"
        )
        append_row(
            HISTORY,
            HISTORY_HEAD,
            f"| {started:%Y-%m-%d %H:%M} | {code} | {rate:,.0f} | {1e6 / rate:.1f} | {setup} | "
            f"{load:.1f} | {machine()} |",
        )
        print("appended to the hot-path history in docs/benchmarks.md")


if __name__ == "__main__":
    main()
