"""The load generator: the wrk command line and what we read from its output."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from .procs import CLIENT_CPU

CONNECTIONS = 64


@dataclass
class Wrk:
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    non_2xx_3xx: int = 0
    socket_errors: str = ""
    raw: str = ""
    cpu_share: float = float("nan")  # wrk's own CPU time / wall time (1.0 = one core)

    @property
    def answered(self) -> int:
        return self.requests - self.non_2xx_3xx


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> Wrk:
    w = Wrk(raw=out)
    if m := re.search(r"^\s*(\d+) requests in", out, re.M):
        w.requests = int(m.group(1))
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M):
        w.rps = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", out, re.M):
        w.p50_ms = _ms(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        w.p99_ms = _ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        w.non_2xx_3xx = int(m.group(1))
    if m := re.search(r"Socket errors:\s*(.+)", out):
        w.socket_errors = m.group(1).strip()
    return w


def wrk_cmd(url: str, seconds: float, cpus: str = CLIENT_CPU) -> list[str]:
    return [
        "taskset",
        "-c",
        cpus,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "2s",
        url,
    ]


def run_wrk(url: str, seconds: float, cpus: str = CLIENT_CPU) -> Wrk:
    before = os.times()
    r = subprocess.run(
        wrk_cmd(url, seconds, cpus), capture_output=True, text=True, timeout=seconds + 60
    )
    after = os.times()
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
    w = parse_wrk(r.stdout)
    # Only wrk (and its taskset) is reaped in between, so the children's CPU is wrk's.
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    w.cpu_share = cpu / max(after.elapsed - before.elapsed, 1e-9)
    return w
