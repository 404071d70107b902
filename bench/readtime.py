#!/usr/bin/env python3
"""Does a full budget of streamed pixels make ordinary pixels wait?

Starts ``mailbeacon serve`` (SQLite, default limits: max_connections 1000,
read_time_streams 2000) pinned to core 0 and, from core 1, measures ordinary
pixel hits (a Gmail image proxy's: answered with the plain GIF at once) with
a small keep-alive load generator: first alone, then while a second process
holds N direct-reader opens (a desktop mail client's user agent and address),
each of which streams a frame a second for as long as it is held. N defaults
to the whole budget, twice max_connections: without streams counted apart,
ordinary hits would find no slot at all.

    .venv/bin/python bench/readtime.py                 # 2,000 streams, 3 x 10 s per condition
    .venv/bin/python bench/readtime.py --quick --no-write

Writes the ``<!-- bench:readtime -->`` section of docs/read-time.md.
Not a test; never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VBIN = ROOT / ".venv" / "bin"
SERVER_CPU, CLIENT_CPU = "0", "1"
DOC = ROOT / "docs" / "read-time.md"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"


def log(msg: str) -> None:
    print(f"[readtime] {msg}", file=sys.stderr, flush=True)


def request(path: str, ua: str, ip: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {ua}\r\n"
        f"X-Forwarded-For: {ip}\r\nAccept: image/*\r\n\r\n"
    ).encode()


# --- the ordinary load (a process of its own, on the client core) -------------------


async def _ordinary(port: int, path: str, conns: int, seconds: float) -> dict[str, float]:
    req = request(path, GMAIL_PROXY, "66.249.84.222")
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            writer.write(req)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                n = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
                await reader.readexactly(n)
            except (asyncio.IncompleteReadError, AttributeError, ConnectionError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            lat.append(time.perf_counter() - t)
        writer.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    return {"n": len(lat), "rps": len(lat) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000,
            "errors": errors}  # fmt: skip


# --- the held streams (a process of their own, on the client core) -----------------


async def _hold(port: int, paths: list[str], n: int) -> None:
    """Open ``n`` direct-reader opens and keep reading their frames until SIGTERM."""
    rnd = random.Random(7)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    frames = 0
    writers = []

    async def one(i: int) -> None:
        nonlocal frames
        ip = f"81.{rnd.randrange(1, 250)}.{rnd.randrange(1, 250)}.{rnd.randrange(1, 250)}"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(request(paths[i % len(paths)], THUNDERBIRD, ip))
        while not stop.is_set():
            chunk = await reader.read(4096)
            if not chunk:
                return
            frames += 1

    for i in range(n):  # a few at a time: each open is also a committed hit
        asyncio.ensure_future(one(i))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await stop.wait()
    for w in writers:
        w.close()
    print(json.dumps({"chunks": frames}), flush=True)


# --- the measurement -------------------------------------------------------------------


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def run(cmd: list[str], env: dict[str, str]) -> str:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def ordinary(port: int, path: str, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", CLIENT_CPU, sys.executable, __file__, "--ordinary", str(port), path,
         str(args.connections), str(args.duration)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> int:  # noqa: C901 - one scenario script read top to bottom
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--streams", type=int, default=2000, help="streams held (2000: the budget)")
    ap.add_argument("--connections", type=int, default=32, help="ordinary keep-alive clients (32)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per condition, interleaved (3)")
    ap.add_argument("--quick", action="store_true", help="1 x 4 s per condition")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--ordinary", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--hold", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ordinary:
        port, path, conns, secs = args.ordinary
        print(json.dumps(asyncio.run(_ordinary(int(port), path, int(conns), float(secs)))))
        return 0
    if args.hold:
        port, paths, n = args.hold
        asyncio.run(_hold(int(port), paths.split(","), int(n)))
        return 0
    if args.quick:
        args.duration, args.repeat = 4.0, 1

    work = Path(tempfile.mkdtemp(prefix="mailbeacon-bench-readtime-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")}
    env.update(MAILBEACON_DATA_DIR=str(work), MAILBEACON_READ_TIME_CAP="600",
               MAILBEACON_READ_TIME_STREAMS=str(max(args.streams, 1)))  # fmt: skip
    mb = str(VBIN / "mailbeacon")
    run([mb, "migrate"], env)
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, mb, "serve", "--port", "0", "--trust-proxy", "127.0.0.0/8"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    holder: subprocess.Popen[str] | None = None
    try:
        assert server.stdout is not None
        port = 0
        for line in server.stdout:
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
                break
        base = f"http://127.0.0.1:{port}"
        sent = dt.datetime.fromtimestamp(time.time() - 3600, dt.UTC).isoformat()
        paths = []
        for i in range(11):  # direct readers open these; the ordinary load hits the first
            msg = json.loads(run([mb, "message", "new", "--to", f"r{i}@example.com", "--sent-at",
                                  sent, "--base-url", base, "--json"], env))  # fmt: skip
            paths.append(msg["open_url"].removeprefix(base))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(base + "/healthz", timeout=1).status == 200:
                    break
            time.sleep(0.2)
        started = dt.datetime.now(dt.UTC)
        ordinary(port, paths[0], argparse.Namespace(connections=args.connections, duration=2.0))
        alone: list[dict[str, float]] = []
        full: list[dict[str, float]] = []
        held = []
        for i in range(args.repeat):
            log(f"run {i + 1}/{args.repeat}: alone")
            alone.append(ordinary(port, paths[0], args))
            log(f"run {i + 1}/{args.repeat}: opening {args.streams} streams")
            holder = subprocess.Popen(
                ["taskset", "-c", CLIENT_CPU, sys.executable, __file__, "--hold", str(port),
                 ",".join(paths[1:]), str(args.streams)],
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if metric(base, "mailbeacon_read_streams") >= args.streams:
                    break
                time.sleep(0.5)
            held.append(metric(base, "mailbeacon_read_streams"))
            log(f"  {held[-1]:.0f} streams open; measuring")
            full.append(ordinary(port, paths[0], args))
            full[-1]["still"] = metric(base, "mailbeacon_read_streams")
            holder.send_signal(signal.SIGTERM)
            holder.communicate(timeout=60)
            holder = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and metric(base, "mailbeacon_read_streams") > 0:
                time.sleep(0.3)
        refused = metric(base, 'mailbeacon_http_closed_total{reason="over_capacity"}')
    finally:
        if holder is not None:
            holder.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    rows = [
        f"| {name} | {med(r, 'rps'):,.0f} | {med(r, 'p50'):.2f} ms | {med(r, 'p99'):.2f} ms "
        f"| {max(x['p99'] for x in r):.2f} ms | {sum(x['errors'] for x in r):.0f} |"
        for name, r in (("alone", alone), (f"{args.streams:,} streams held", full))
    ]
    command = "bench/readtime.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    body = f"""## Ordinary pixels beside a full budget of streamed pixels

Measured {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; {args.repeat} run(s) x
{args.duration:g} s per condition, interleaved, **medians** shown. `mailbeacon serve` (SQLite,
default limits: `max_connections` 1000; `read_time_streams` {args.streams}, `read_time_cap` 600 s
so no stream ends during a run) pinned to core {SERVER_CPU}; from core {CLIENT_CPU},
{args.connections} keep-alive clients send ordinary pixel hits (Gmail's image proxy: the plain GIF)
as fast as they are answered, alone and while another process holds {args.streams:,} direct-reader
opens, each streaming a frame a second. Command: `{command}`.

| condition | hits/s | p50 | p99 | worst run p99 | errors |
|---|---:|---:|---:|---:|---:|

{chr(10).join(rows)}

Streams open when measuring: {", ".join(f"{h:.0f}" for h in held)}; still open at the end of each
run: {", ".join(f"{r['still']:.0f}" for r in full)} (none cut). Connections refused for the
ordinary cap (`over_capacity`) over the whole bench: {refused:.0f}. The load generator is Python
(asyncio), so hits/s is bounded by the client as much as by the server; the comparison is the point.
On a machine shared with other work, run-to-run noise is larger than the difference measured.
"""
    body = body.replace("|---:|\n\n|", "|---:|\n|")
    print(body)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness.report import write_section

        write_section("readtime", body, doc=DOC)
        log(f"wrote the readtime section of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
