"""Shared code for bench/pixel and bench/click (stdlib only; not a test, never in CI).

One invocation measures every server in the same run, interleaved, so the
ratios compare like with like on a noisy shared machine:

    nginx (empty_gif / return 302, access_log on)   the reference
    mailbeacon serve (uvicorn)  on SQLite synchronous=FULL / NORMAL, on PostgreSQL
    mailbeacon on granian        (alternative ASGI server)
    pytracking on Flask/gunicorn (the naive Python peer)

Each server runs pinned to core 0 (``taskset -c 0``), wrk and this harness run
on core 1. Every server is started fresh for every run, warmed for a moment,
then driven with ``wrk -t1 -c64 --latency`` for ``--duration`` seconds; that
repeats ``--repeat`` times and the table reports medians. Only 127.0.0.1 is used.
"""

# Modules, by concern (the docstring above is the --help text): prereqs (what a run
# needs, checked first), procs (spawn, stop, clean up, ports, RSS, core layout), wrk
# (command and parsing), stores (counting rows, PostgreSQL), servers (Server, nginx,
# the pytracking peer), mbserver (mailbeacon on uvicorn or granian), menu (the keys
# --servers takes), run (one measured run), report (table, versions, machine,
# commit, the sections in docs/benchmarks.md). bench/README.md has the same list.

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from .mbserver import serve_has_workers
from .menu import DEFAULT_SERVERS, all_servers
from .prereqs import problems
from .procs import CLIENT_CPU, at_cleanup, cleanup, install_cleanup, log
from .report import DOC, Row, code_under_test, section, write_section
from .run import measure
from .servers import Server
from .stores import pg_drop, pg_problem

TITLES = {
    "pixel": "Pixel (open) hits: GET /o/<token>.gif",
    "click": "Click redirects: GET /c/<token> -> 302",
}


def _parser(endpoint: str, keys: list[str]) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=f"bench/{endpoint}",
        description=TITLES[endpoint] + ".\n\n" + (__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measured wrk run (10)"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs per server; medians are reported (3)"
    )
    ap.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured wrk seconds before each run (2)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="3 s x 1 run, 1 s warm-up; still writes the doc"
    )
    ap.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma list from: {', '.join(keys)} (default: %(default)s)",
    )
    ap.add_argument(
        "--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    ap.add_argument(
        "--profile",
        metavar="DIR",
        help="also run py-spy record (raw stacks) on each "
        "Python server during its first measured run, into DIR (skews that run)",
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep the temp dirs (logs, dbs, wrk output)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="also measure nginx, `mailbeacon serve --workers N` and the pytracking peer with "
        "N workers pinned to cores 0..N-1, beside the 1-worker rows (scaling); wrk takes the "
        "next core, or shares them when none is left (1)",
    )
    return ap


def _rows(
    args: argparse.Namespace, servers: dict[str, Server], chosen: list[str]
) -> tuple[list[Row], list[str]]:
    """The rows to measure (1 worker, plus N workers where a server scales), and what is not."""
    skipped = []
    on_pg = [k for k in chosen if servers[k].on_pg]
    if on_pg and (why := pg_problem()):
        skipped.append(f"{', '.join(on_pg)}: {why}")
        log(f"skipping the PostgreSQL rows ({skipped[-1]})")
        chosen = [k for k in chosen if k not in on_pg]
    n = args.workers
    if n > 1 and not serve_has_workers():
        skipped.append(
            f"{n} workers: `mailbeacon serve --help` lists no --workers option yet (issue 16 adds it)"
        )
        log(f"measuring 1 worker only ({skipped[-1]})")
        n = 1
    rows = []
    for k in chosen:
        rows.append(Row(servers[k]))
        if n > 1 and servers[k].scales:
            rows.append(Row(servers[k], n))
    return rows, skipped


def main(endpoint: str, argv: list[str] | None = None) -> int:
    title = TITLES[endpoint]
    servers = {s.key: s for s in all_servers(endpoint)}
    ap = _parser(endpoint, list(servers))
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.repeat, args.warmup = 3.0, 1, 1.0
    chosen = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in servers]
    if unknown:
        ap.error(f"unknown server(s): {', '.join(unknown)}")
    if not 1 <= args.workers <= (os.cpu_count() or 1):
        ap.error(f"--workers must be between 1 and the {os.cpu_count()} cores of this machine")
    needs = {"wrk", "taskset", "mailbeacon"}.union(*(servers[k].needs for k in chosen))
    if args.profile:
        needs.add("py-spy")
    missing = problems(needs)
    if missing:
        for line in missing:
            print(f"bench/{endpoint}: {line}", file=sys.stderr)
        return 2
    rows, skipped = _rows(args, servers, chosen)

    install_cleanup()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})  # keep the harness off the server core
    root = Path(tempfile.mkdtemp(prefix=f"mailbeacon-bench-{endpoint}-"))
    if not args.keep:
        at_cleanup(lambda: shutil.rmtree(root, ignore_errors=True), first=True)
    given = argv if argv is not None else sys.argv[1:]
    command = "bench/" + endpoint + (" " + shlex.join(given) if given else "")
    started = dt.datetime.now(dt.UTC)
    code = code_under_test()
    profile_dir = Path(args.profile).resolve() if args.profile else None
    try:
        for i in range(args.repeat):
            for row in rows:  # interleaved: run i of every server, then run i+1
                workers = "" if row.workers == 1 else f", {row.workers} workers"
                log(f"run {i + 1}/{args.repeat}: {row.server.key}{workers} ({args.duration:g}s)")
                prof = profile_dir if (i == 0 and row.server.kind != "nginx") else None
                run = measure(
                    row.server, endpoint, args.duration, args.warmup, root, prof, row.workers
                )
                row.runs.append(run)
                log(
                    f"  {run.rps:,.0f}/s p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms "
                    f"rss {run.rss_mb:.0f} MB recorded {run.recorded} of {run.answered} "
                    f"{run.errors} {run.check}"
                )
    finally:
        cleanup()
        pg_drop() if any(r.server.on_pg for r in rows) else None
    body = section(
        title,
        rows,
        endpoint=endpoint,
        started=started,
        repeat=args.repeat,
        duration=args.duration,
        warmup=args.warmup,
        command=command,
        code=code,
        skipped=skipped,
    )
    print()
    print(body)
    if not args.no_write:
        write_section(endpoint, body)
        log(f"wrote the {endpoint} section of {DOC}")
    return 0
