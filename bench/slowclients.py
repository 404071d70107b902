#!/usr/bin/env python3
"""Do slow clients raise the pixel's latency for everyone else?

Starts ``mailbeacon serve`` (SQLite, defaults; pinned to core 0 like
bench/pixel) and measures ordinary pixel hits with wrk from core 1, first
alone, then while a second process holds N slow clients (slowloris: each
sends a request line and one header, then another header line every
``--drip`` seconds, and reconnects as soon as the server closes it). N is
below and at twice the default connection cap, so the header timeout and
the cap's make-room rule are what is measured; slow headers, slow POST
bodies and half of each.

    .venv/bin/python bench/slowclients.py                  # 900 and 2,000 slow clients, 3 x 10 s each
    .venv/bin/python bench/slowclients.py --quick --no-write
    .venv/bin/python bench/slowclients.py --conditions 5000:body --drip 2

Writes the ``<!-- bench:slowclients -->`` section of docs/benchmarks.md.
Not a test; never run in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness.mbserver import mailbeacon_server
from _harness.procs import (
    CLIENT_CPU,
    RssSampler,
    at_cleanup,
    cleanup,
    install_cleanup,
    log,
)
from _harness.report import DOC, code_under_test, machine, write_section
from _harness.wrk import CONNECTIONS, Wrk, run_wrk

# Half send their headers a line at a time (slowloris); the other half send
# headers and then a body a byte at a time (slow POST, "R.U.D.Y.").
SLOW_HEAD = b"GET /o/slow.gif HTTP/1.1\r\nHost: bench\r\nUser-Agent: slowloris\r\n"
SLOW_BODY = (
    b"POST /api/v1/messages HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000000\r\n\r\n{"
)


# --- the slow clients (a process of their own, on the client core) ------------


def drive(port: int, n: int, drip: float, kind: str = "mixed") -> None:  # noqa: C901 - one scenario per client kind, read top to bottom
    """Hold ``n`` slow connections until SIGTERM; print counts as JSON."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    sel = selectors.DefaultSelector()
    stats = {"connects": 0, "closed_by_server": 0, "connect_errors": 0, "held_max": 0}
    due: dict[socket.socket, float] = {}
    body: set[socket.socket] = set()
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)

    def connect() -> None:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            stats["connect_errors"] += 1
            s.close()
            return
        stats["connects"] += 1
        if kind == "body" or (kind == "mixed" and stats["connects"] % 2):
            body.add(s)
        due[s] = 0.0  # send the head as soon as it is writable
        sel.register(s, selectors.EVENT_READ)

    def gone(s: socket.socket) -> None:
        stats["closed_by_server"] += 1
        sel.unregister(s)
        due.pop(s, None)
        body.discard(s)
        s.close()

    for _ in range(n):
        connect()
    while not stop:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                gone(s)
        now = time.monotonic()
        for s, when in list(due.items()):
            if when > now:
                continue
            try:
                if when == 0.0:
                    s.send(SLOW_BODY if s in body else SLOW_HEAD)
                else:
                    s.send(b" " if s in body else b"X-Drip: 1\r\n")
                due[s] = now + drip
            except (BlockingIOError, InterruptedError):
                due[s] = now + 0.05  # connect still in progress
            except OSError:
                gone(s)
        for _ in range(n - len(due)):  # what the server closed, the attacker reopens
            connect()
        stats["held_max"] = max(stats["held_max"], len(due))
    print(json.dumps(stats), flush=True)


# --- the measurement ---------------------------------------------------------------


def metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(mailbeacon_http_\w+?)(?:_total)?(?:\{reason="(\w+)"\})? (\S+)$', line)
        if m:
            out[m.group(2) or m.group(1)] = float(m.group(3))
    return out


def summary(runs: list[Wrk]) -> dict[str, float | str]:
    return {
        "rps": statistics.median(r.rps for r in runs),
        "p50": statistics.median(r.p50_ms for r in runs),
        "p99": statistics.median(r.p99_ms for r in runs),
        "worst_p99": max(r.p99_ms for r in runs),
        "non2xx": sum(r.non_2xx_3xx for r in runs),
        "errors": "; ".join(r.socket_errors for r in runs if r.socket_errors) or "none",
    }


KIND_WORDS = {
    "head": "headers a line at a time (slowloris)",
    "body": "a POST body a byte at a time (slow POST)",
    "mixed": "half of them headers, half a body",
}


def with_slow_clients(
    args: argparse.Namespace, base: str, url: str, n: int, kind: str
) -> tuple[Wrk, dict]:
    """One wrk run while ``n`` slow clients of ``kind`` are held; what they saw."""
    port = int(base.rsplit(":", 1)[1])
    before = metrics(base)
    driver = subprocess.Popen(
        [
            "taskset",
            "-c",
            CLIENT_CPU,
            sys.executable,
            __file__,
            "--drive",
            str(port),
            str(n),
            str(args.drip),
            kind,
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the server is at its cap
            if metrics(base).get("mailbeacon_http_connections", 0) >= min(n, 1000) * 0.99:
                break
            time.sleep(0.5)
        held = metrics(base).get("mailbeacon_http_connections", 0)
        run = run_wrk(url, args.duration)
        after = metrics(base)
    finally:
        driver.send_signal(signal.SIGTERM)
        try:
            out, _ = driver.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            driver.kill()
            out, _ = driver.communicate()
    drove = json.loads(out.strip().splitlines()[-1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server has let go of them
        if metrics(base).get("mailbeacon_http_connections", 0) < 10:
            break
        time.sleep(0.2)
    drove.update(
        held=held,
        evicted=after.get("evicted", 0) - before.get("evicted", 0),
        timed_out=after.get("header_timeout", 0) - before.get("header_timeout", 0),
    )
    return run, drove


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--drip", type=float, default=5.0, help="seconds between a slow client's pieces (5)"
    )
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per condition, interleaved; medians reported (3)",
    )
    ap.add_argument("--quick", action="store_true", help="1 x 3 s per condition")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument(
        "--conditions",
        default="900:mixed,2000:head,2000:body,2000:mixed",
        help="N:KIND,... slow clients held and what they drip (head, body or mixed); "
        "the cap is 1000 (default: %(default)s)",
    )
    ap.add_argument(
        "--drive", nargs=4, metavar=("PORT", "N", "DRIP", "KIND"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.drive:
        drive(int(args.drive[0]), int(args.drive[1]), float(args.drive[2]), args.drive[3])
        return 0
    if args.quick:
        args.duration, args.repeat = 3.0, 1
    try:
        conditions = [(int(c.split(":")[0]), c.split(":")[1]) for c in args.conditions.split(",")]
    except (ValueError, IndexError):
        ap.error("--conditions takes N:KIND,... such as 2000:head")
    if any(k not in KIND_WORDS for _, k in conditions):
        ap.error("a KIND is head, body or mixed")
    names = [f"{n}:{k}" for n, k in conditions]
    for tool in ("wrk", "taskset", "curl"):
        if not shutil.which(tool):
            ap.error(f"{tool} not found on PATH")

    install_cleanup()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    root = Path(tempfile.mkdtemp(prefix="mailbeacon-bench-slow-"))
    at_cleanup(lambda: shutil.rmtree(root, ignore_errors=True), first=True)
    started = dt.datetime.now(dt.UTC)
    running = mailbeacon_server("mb", "mailbeacon serve").start("pixel", root, 1)
    base = running.url.split("/o/")[0]
    runs: dict[str, list[Wrk]] = {k: [] for k in ["alone", *names]}
    seen: dict[str, list[dict]] = {k: [] for k in names}
    rss = RssSampler(running.proc.pid)
    rss.start()
    try:
        run_wrk(running.url, 2.0)  # warm-up, unmeasured
        for i in range(args.repeat):  # interleaved, so drift on a shared machine hits all alike
            log(f"run {i + 1}/{args.repeat}: alone ({args.duration:g} s)")
            runs["alone"].append(run_wrk(running.url, args.duration))
            for (n, kind), name in zip(conditions, names, strict=True):
                log(f"run {i + 1}/{args.repeat}: {n} slow clients, {kind}")
                run, drove = with_slow_clients(args, base, running.url, n, kind)
                runs[name].append(run)
                seen[name].append(drove)
                log(
                    f"  p99 {run.p99_ms:.2f} ms, {drove['held']:.0f} held, "
                    f"{drove['evicted']:.0f} made room, {drove['timed_out']:.0f} timed out"
                )
        peak = rss.stop()
    finally:
        cleanup()

    rows = []
    for name, got in runs.items():
        s = summary(got)
        if name == "alone":
            label = "alone"
        else:
            n, kind = name.split(":")
            label = f"{int(n):,} slow clients: {KIND_WORDS[kind]}"
        rows.append(
            f"| {label} | {s['rps']:,.0f} | {s['p50']:.2f} ms | {s['p99']:.2f} ms "
            f"| {s['worst_p99']:.2f} ms | {s['non2xx']} | {s['errors']} |"
        )
    notes = []
    for name, drove in seen.items():
        notes.append(
            f"- {name}: {statistics.median(d['held'] for d in drove):.0f} connections open when wrk "
            f"started (the cap is 1000); per run, the slow process opened "
            f"{statistics.median(d['connects'] for d in drove):,.0f} connections and the server closed "
            f"{statistics.median(d['evicted'] for d in drove):,.0f} to make room and "
            f"{statistics.median(d['timed_out'] for d in drove):,.0f} for taking over 10 s to arrive (medians)."
        )
    over = [d for name, ds in seen.items() if int(name.split(":")[0]) > 1000 for d in ds]
    churn = (
        statistics.median((d["evicted"] + d["timed_out"]) / (args.duration + 5) for d in over)
        if over
        else 0.0
    )
    command = "bench/slowclients.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    body = f"""## Slow clients: pixel latency for everyone else

Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; {args.repeat} run(s) x {args.duration:g} s
per condition, conditions interleaved, **medians** shown. `mailbeacon serve` (SQLite,
`synchronous=FULL`, default limits: `max_connections` 1000, `header_timeout` 10 s) pinned to
core 0; from core 1 ordinary pixel hits with
`taskset -c 1 wrk -t1 -c{CONNECTIONS} -d{args.duration:g}s --latency --timeout 2s URL`, alone and
while a second process (also on core 1) holds N slow clients at once (below the cap of 1000, and
twice it), each sending one piece every {args.drip:g} s and reopened as soon as the server closes it.
Command: `{command}` (code under test: {code_under_test()}).

| condition | hits/s | p50 | p99 | worst run p99 | non-2xx | wrk socket errors |
|---|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

{chr(10).join(notes)}

Peak server RSS over the whole run: {peak:.0f} MB. Over the cap, every slow client the server
closes to make room is reopened at once, so while wrk measured, the server also accepted and
closed about {churn:,.0f} slow connections a second (median over the conditions over the cap), on
the same core as the pixels.
"""
    print(body)
    if not args.no_write:
        write_section("slowclients", body)
        log(f"wrote the slowclients section of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
