"""What a run reports: the table against the targets, versions, machine, commit, and the doc.

Sections of docs/benchmarks.md live between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; a script rewrites only its own section.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .procs import REPO, VBIN, client_cpus, server_cpus, tool
from .run import Run
from .servers import Server
from .stores import pg
from .wrk import CONNECTIONS

DOC = REPO / "docs" / "benchmarks.md"

# Targets from docs/design.md ("Targets").
T_NGINX = 0.25
T_PEER = 10.0
T_P99_MS = 10.0
T_RSS_MB = 150.0


@dataclass
class Row:
    server: Server
    workers: int = 1
    runs: list[Run] = field(default_factory=list)

    def med(self, attr: str) -> float:
        vals = [getattr(r, attr) for r in self.runs]
        return statistics.median(vals) if vals else float("nan")

    @property
    def label(self) -> str:
        return self.server.label_for(self.workers)


def _fmt_ratio(x: float) -> str:
    return "-" if x != x else f"{x:.2f}x"


def _pf(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def table(rows: list[Row], endpoint: str) -> tuple[str, list[str]]:
    # Ratios compare rows with the same worker count (and so the same core layout).
    by_key = {(r.server.key, r.workers): r for r in rows}

    def ref_rps(key: str, workers: int) -> float:
        ref = by_key.get((key, workers))
        return ref.med("rps") if ref else float("nan")

    lines = [
        "| server | hits/s | p50 ms | p99 ms | peak RSS MB | durable (rows of answered) | vs nginx | vs pytracking |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    verdicts = []
    for r in rows:
        n_rps, p_rps = ref_rps("nginx", r.workers), ref_rps("peer", r.workers)
        rps, p50, p99, rss = r.med("rps"), r.med("p50_ms"), r.med("p99_ms"), r.med("rss_mb")
        ans = sum(x.answered for x in r.runs)
        if r.server.kind == "nginx":
            rec = sum(x.recorded or 0 for x in r.runs)
            durable = f"n/a (access log: {rec:,} lines of {ans:,})"
        elif r.server.kind == "floor":
            durable = "n/a (records nothing)"
        else:
            rec = sum(x.recorded or 0 for x in r.runs)
            short = sum(1 for x in r.runs if (x.recorded or 0) < x.answered)
            durable = f"{rec:,} of {ans:,}" + ("" if short == 0 else f" ({short} run(s) short!)")
        errs = "; ".join(sorted({x.errors for x in r.runs if x.errors}))
        label = r.label + (f" [{errs}]" if errs else "")
        lines.append(
            f"| {label} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rss:.0f} | {durable} | "
            f"{_fmt_ratio(rps / n_rps if n_rps else float('nan'))} | "
            f"{_fmt_ratio(rps / p_rps if p_rps else float('nan'))} |"
        )
        if r.server.kind == "mailbeacon":
            checks = [
                f"hits/s >= {T_NGINX} x nginx: {_pf(rps >= T_NGINX * n_rps)} ({rps / n_rps:.2f}x)"
                if n_rps == n_rps
                else "vs nginx: not measured",
                f">= {T_PEER:g} x pytracking: {_pf(rps >= T_PEER * p_rps)} ({rps / p_rps:.1f}x)"
                if p_rps == p_rps
                else "vs pytracking: not measured",
                f"p99 <= {T_P99_MS:g} ms: {_pf(p99 <= T_P99_MS)} ({p99:.1f} ms)",
                f"RSS <= {T_RSS_MB:g} MB: {_pf(rss <= T_RSS_MB)} ({rss:.0f} MB)",
                f"durable: {_pf(all((x.recorded or 0) >= x.answered for x in r.runs))} ({rec:,} of {ans:,})",
            ]
            if r.workers > 1:
                one = ref_rps(r.server.key, 1)
                checks.append(
                    f"scaling: {rps / one:.2f}x of 1 worker"
                    if one == one
                    else "1 worker: not measured"
                )
            verdicts.append(f"- **{r.label}**: " + "; ".join(checks))
    return "\n".join(lines), verdicts


# --- where and what was measured ---------------------------------------------------------


def _version(cmd: list[str], pattern: str = r"(\d[\w.+~-]*)") -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        m = re.search(pattern, r.stdout + r.stderr)
        return m.group(1) if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def versions() -> dict[str, str]:
    py = str(VBIN / "python")
    pkgs = [
        "mailbeacon",
        "uvicorn",
        "uvloop",
        "httptools",
        "granian",
        "gunicorn",
        "flask",
        "pytracking",
        "sqlalchemy",
        "psycopg",
    ]
    code = (
        "import importlib.metadata as m, json, sys, sqlite3\n"
        f"out = {{'python': sys.version.split()[0], 'sqlite': sqlite3.sqlite_version}}\n"
        f"for p in {pkgs!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except Exception: out[p] = 'not installed'\n"
        "print(json.dumps(out))"
    )
    try:
        v = json.loads(
            subprocess.run(
                [py, "-c", code], capture_output=True, text=True, timeout=30, check=True
            ).stdout
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        v = {}
    v["nginx"] = _version([tool("nginx") or "nginx", "-v"], r"nginx/(\S+)")
    v["wrk"] = _version(["wrk", "-v"], r"wrk (\S+)")
    try:
        v["postgresql"] = (
            pg("SHOW server_version")
            + " (fsync="
            + pg("SHOW fsync")
            + ", synchronous_commit="
            + pg("SHOW synchronous_commit")
            + ")"
        )
    except Exception:  # noqa: BLE001
        v["postgresql"] = "not reachable"
    return v


def code_under_test() -> str:
    """The commit measured, and whether src/ had uncommitted changes at the time."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{rev or 'unknown'}" + (" + uncommitted changes in src/" if dirty else "")


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) // 1024} MB RAM"
    return f"{os.cpu_count()} cores ({model}), {mem}, Linux {platform.release()}"


# --- the section in docs/benchmarks.md ---------------------------------------------------


def section(
    title: str,
    rows: list[Row],
    *,
    endpoint: str,
    started: dt.datetime,
    repeat: int,
    duration: float,
    warmup: float,
    command: str,
    code: str,
    skipped: list[str] | None = None,
) -> str:
    tbl, verdicts = table(rows, endpoint)
    layout = _workers_layout(rows)
    v = versions()
    checks = sorted({r.check for row in rows for r in row.runs if r.check})
    return f"""### {title}

Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; {repeat} run(s) x {duration:g} s
per server (after {warmup:g} s warm-up), servers interleaved, **medians** shown.
Server pinned to core 0 (`taskset -c 0`), load from core 1:
`taskset -c 1 wrk -t1 -c{CONNECTIONS} -d{duration:g}s --latency --timeout 2s URL`.
"durable" = rows in the events table after the run (server stopped gracefully) vs.
2xx/3xx responses wrk counted, summed over runs (rows can exceed answers by the few
requests still in flight when wrk stopped). RSS = peak summed VmRSS of the server's
process tree, sampled every 0.2 s.
{layout}
Command: `{command}` (code under test: {code})

{tbl}
{"".join(f"{chr(10)}Not measured: {s}.{chr(10)}" for s in skipped or [])}
Targets (docs/design.md: >= {T_NGINX} x nginx, >= {T_PEER:g} x pytracking, p99 <= {T_P99_MS:g} ms at {CONNECTIONS}
connections, RSS <= {T_RSS_MB:g} MB):

{chr(10).join(verdicts) if verdicts else "- no mailbeacon row measured"}

Pre-run probe (one `curl` per mailbeacon start): {", ".join(checks) or "-"}.

Servers:
{chr(10).join(f"- {r.label}: `{r.server.command(r.workers)}`" + (f" ({r.server.note})" if r.server.note else "") for r in rows)}

Versions: {", ".join(f"{k} {val}" for k, val in v.items())}.
"""


def _workers_layout(rows: list[Row]) -> str:
    """The paragraph on --workers N rows (empty without them): where things ran, what is fair."""
    n = max((r.workers for r in rows), default=1)
    if n == 1:
        return ""
    cores = os.cpu_count() or 1
    client = client_cpus(n)
    where = (
        f"wrk on core {client}"
        if "-" not in client
        else f"wrk on the same cores (`taskset -c {client}`; none is left of {cores})"
    )
    cpu = ", ".join(f"{r.server.key} {r.med('client_cpu'):.2f}" for r in rows if r.workers == n)
    return f"""
`--workers {n}` rows ("(cores {server_cpus(n)})"): {n} workers pinned to cores {server_cpus(n)}
(nginx `worker_processes {n}`, `mailbeacon serve --workers {n}`, `gunicorn -w {n}`),
{where}. The other rows keep the one-core layout above; "scaling" = hits/s with
{n} workers over hits/s with 1 worker in this run, and "vs nginx" / "vs pytracking"
compare rows with the same worker count. Where wrk shares the cores, its CPU is
taken from the server, and it needs far more at nginx's rate than at mailbeacon's:
that flatters mailbeacon's "vs nginx" at {n} workers, so the 1-worker rows answer
the 0.25x target. wrk's own CPU (1.0 = one core): {cpu}.
"""


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` in ``doc``
    (docs/benchmarks.md unless another page holds the figures)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    doc.parent.mkdir(parents=True, exist_ok=True)
    if doc.exists():
        text = doc.read_text()
    else:
        text = (
            "# Benchmarks\n\n"
            'Measured figures for the targets in docs/design.md ("Targets"). Each section is\n'
            "written by the script named in it; re-run the script to refresh it, and do not\n"
            "edit between the `<!-- bench:... -->` markers by hand.\n"
        )
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def append_row(name: str, head: str, row: str) -> None:
    """Add ``row`` under the table of section NAME; a missing section starts as ``head``.

    For histories: earlier rows stay as they are, so the section keeps every figure
    with the commit it was measured on.
    """
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = DOC.read_text() if DOC.exists() else ""
    m = re.search(re.escape(start) + r"\n(.*?)\n?" + re.escape(end), text, re.S)
    body = m.group(1).rstrip() if m else head.rstrip()
    write_section(name, body + "\n" + row)
