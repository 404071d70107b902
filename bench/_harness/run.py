"""One measured run: start a fresh server, warm it, drive it with wrk, count what is durable."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import VBIN, RssSampler, client_cpus, kill_started, log, stop, track
from .servers import Server
from .wrk import run_wrk


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    answered: int
    recorded: int | None
    errors: str
    check: str
    client_cpu: float = float("nan")  # wrk's CPU, in cores (matters where it shares cores)


def measure(
    server: Server,
    endpoint: str,
    seconds: float,
    warmup: float,
    root: Path,
    profile_dir: Path | None = None,
    workers: int = 1,
) -> Run:
    cpus = client_cpus(workers)
    tag = server.key if workers == 1 else f"{server.key}-w{workers}"
    for attempt in (1, 2, 3):
        work = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=root))
        try:
            running = server.start(endpoint, work, workers)
            break
        except Exception as exc:
            kill_started()
            tail = ""
            with contextlib.suppress(OSError):
                tail = (work / "server.log").read_text(errors="replace")[-2000:]
            log(f"{tag}: start failed (attempt {attempt}): {exc}\n{tail}")
            if attempt == 3:
                raise
    spy = None
    try:
        if warmup > 0:
            run_wrk(running.url, warmup, cpus)
            time.sleep(0.5)
        before = running.count() if running.count else 0
        sampler = RssSampler(running.proc.pid)
        sampler.start()
        if profile_dir is not None and running.server_pid is not None:
            spy = _start_py_spy(running.server_pid(), profile_dir, tag, endpoint, seconds, cpus)
        w = run_wrk(running.url, seconds, cpus)
        rss = sampler.stop()
        if spy is not None:
            spy.wait(seconds + 30)
    finally:
        stop(running.proc)  # graceful: queued hits are flushed before exit
    recorded = running.count() - before if running.count else None
    errs = w.socket_errors
    if w.non_2xx_3xx:
        errs = (errs + "; " if errs else "") + f"{w.non_2xx_3xx} non-2xx/3xx"
    (work / "wrk.txt").write_text(w.raw)
    return Run(
        w.rps, w.p50_ms, w.p99_ms, rss, w.answered, recorded, errs, running.check, w.cpu_share
    )


def _start_py_spy(
    pid: int, out: Path, key: str, endpoint: str, seconds: float, cpus: str
) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{endpoint}-{key}"
    cmd = [
        str(VBIN / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "100",
        "--threads",
        "--idle",
        "--format",
        "raw",
        "-o",
        f"{base}.txt",
    ]
    log("profiling: " + shlex.join(cmd))
    p = subprocess.Popen(
        ["taskset", "-c", cpus, *cmd],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{base}.log", "w"),
        start_new_session=True,
    )
    return track(p)
