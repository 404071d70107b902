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

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("MAILBEACON_VENV", REPO / ".venv"))
VBIN = VENV / "bin"
DOC = REPO / "docs" / "benchmarks.md"
SERVER_CPU = "0"
CLIENT_CPU = "1"
CONNECTIONS = 64
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtAX"]
PG_DB = "mb_bench"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"

# Targets from DESIGN.md ("Targets").
T_NGINX = 0.25
T_PEER = 10.0
T_P99_MS = 10.0
T_RSS_MB = 150.0

GIF_43 = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- process bookkeeping: everything we start dies with us ----------------------

_procs: list[subprocess.Popen] = []
_cleanups: list[Callable[[], None]] = []


def _kill_group(p: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group we created for ``p``, then SIGKILL it."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Children (nginx worker, gunicorn worker, granian worker) may outlive the leader.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(5)


def cleanup() -> None:
    while _procs:
        _kill_group(_procs.pop(), grace=3.0)
    while _cleanups:
        with contextlib.suppress(Exception):
            _cleanups.pop()()


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def spawn(
    cmd: list[str], *, env: dict[str, str] | None = None, log_path: Path, cwd: Path | None = None
) -> subprocess.Popen:
    """Start ``cmd`` pinned to the server core, in its own process group."""
    out = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *cmd],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    out.close()
    _procs.append(p)
    return p


def stop(p: subprocess.Popen, grace: float = 15.0) -> None:
    """Graceful stop (the recorder flushes its queue on shutdown), then make sure."""
    if p in _procs:
        _procs.remove(p)
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} did not stop on SIGINT within {grace}s")
    _kill_group(p, grace=3.0)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A random free TCP port on 127.0.0.1, below the ephemeral range wrk's sockets use."""
    high = max(_ephemeral_low() - 1, 20100)
    for _ in range(200):
        port = random.randint(20000, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def wait_http(url: str, p: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"server exited with {p.returncode} before answering {url}")
        try:
            with _opener.open(url, timeout=1) as r:  # never follow a redirect off 127.0.0.1
                r.read()
            return
        except urllib.error.HTTPError:
            return  # it answered; a 3xx/4xx is still an answer
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):  # noqa: ANN002, ANN003, ANN201
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def probe(url: str) -> tuple[int, dict[str, str], bytes]:
    """One request (no redirect following): status, lower-case headers, body."""
    try:
        with _opener.open(url, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def curl_headers(url: str) -> str:
    """The single curl the brief asks for: response headers of one GET."""
    r = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-D", "-", "--max-time", "5", url],
        capture_output=True,
        text=True,
        timeout=15,
    )
    return r.stdout


# --- measuring ------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_pids(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak of the summed VmRSS of a process tree (taskset -> server -> workers), every 0.2 s.

    The tree is re-walked every 2 s so late-forked workers are counted.
    """

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_kb = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        pids: list[int] = []
        last_walk = 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            if now - last_walk > 2.0:
                pids, last_walk = tree_pids(self.root), now
            total = sum(rss_kb(p) for p in pids)
            self.peak_kb = max(self.peak_kb, total)
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> float:
        self._halt.set()
        self.join(2)
        return self.peak_kb / 1024


@dataclass
class Wrk:
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    non_2xx_3xx: int = 0
    socket_errors: str = ""
    raw: str = ""

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


def wrk_cmd(url: str, seconds: float) -> list[str]:
    return [
        "taskset",
        "-c",
        CLIENT_CPU,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "2s",
        url,
    ]


def run_wrk(url: str, seconds: float) -> Wrk:
    r = subprocess.run(wrk_cmd(url, seconds), capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
    return parse_wrk(r.stdout)


def sqlite_count(db: Path, table: str = "events") -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def pg(sql: str, db: str = "postgres") -> str:
    r = subprocess.run([*PG_ADMIN, "-d", db, "-c", sql], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout.strip()


def pg_available() -> bool:
    try:
        pg("SELECT 1")
        return True
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return False


def pg_recreate() -> None:
    pg(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
    pg(f"CREATE DATABASE {PG_DB}")


def pg_drop() -> None:
    with contextlib.suppress(Exception):
        pg(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


# --- the servers under test ------------------------------------------------------


@dataclass
class Running:
    proc: subprocess.Popen
    url: str
    count: Callable[[], int] | None  # rows recorded so far (None: not a recording server)
    workdir: Path
    check: str = ""  # what the pre-run probe found
    server_pid: Callable[[], int] | None = None  # the process py-spy should look at


@dataclass
class Server:
    key: str
    label: str
    kind: str  # "nginx" | "mailbeacon" | "peer"
    start: Callable[[str, Path], Running]  # (endpoint "pixel"|"click", workdir)
    command: str = ""
    note: str = ""


def _nginx_start(endpoint: str, work: Path) -> Running:
    port = free_port()
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / d).mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/access.log;
    keepalive_requests 1000000;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /o/ {{ empty_gif; }}
        location /c/ {{ return 302 https://example.com/; }}
    }}
}}
""")
    p = spawn(
        ["nginx", "-e", str(work / "error.log"), "-p", str(work), "-c", str(conf)],
        log_path=work / "server.log",
    )
    path = (
        "/o/AW8BAZP0LzjS_sRNFPpv-7D4aVI.gif"
        if endpoint == "pixel"
        else "/c/AWMBAQFodHRwczovL2V4YW1wbGUuY29tL2E"
    )
    url = f"http://127.0.0.1:{port}{path}"
    wait_http(url, p)

    def count() -> int:
        with open(work / "access.log", "rb") as f:
            return sum(1 for _ in f)

    return Running(p, url, count, work)


def _mb_env(work: Path, *, db: str | None, sync: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")}
    env["MAILBEACON_DATA_DIR"] = str(work / "data")
    env["PATH"] = f"{VBIN}:{env.get('PATH', '')}"
    if db:
        env["MAILBEACON_DB"] = db
    if sync:
        env["MAILBEACON_SQLITE_SYNC"] = sync
    return env


def _mb_message(env: dict[str, str], port: int, work: Path) -> dict:
    r = subprocess.run(
        [
            str(VBIN / "mailbeacon"),
            "message",
            "new",
            "--to",
            "x@example.com",
            "--link",
            "https://example.com/a",
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (work / "message.json").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"mailbeacon message new failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def _mb_counter(env: dict[str, str]) -> Callable[[], int]:
    if env.get("MAILBEACON_DB", "").startswith("postgresql"):
        return lambda: int(pg("SELECT count(*) FROM events", PG_DB))
    db = Path(env["MAILBEACON_DATA_DIR"]) / "mailbeacon.db"
    return lambda: sqlite_count(db)


def _leaf_python(root: int) -> int:
    """The deepest python process under ``root`` (the one serving requests)."""
    kids = _children_map()
    best, best_depth, todo = root, -1, [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        if "python" in _exe(pid) and depth > best_depth:
            best, best_depth = pid, depth
        todo.extend((k, depth + 1) for k in kids.get(pid, []))
    return best


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def mailbeacon_server(
    key: str,
    label: str,
    *,
    asgi: str = "uvicorn",
    db: str | None = None,
    sync: str | None = None,
    note: str = "",
    extra_env: dict[str, str] | None = None,
) -> Server:
    def start(endpoint: str, work: Path) -> Running:
        if db:
            pg_recreate()
            _cleanups.append(pg_drop)
        (work / "data").mkdir()
        port = free_port()
        env = _mb_env(work, db=db, sync=sync)
        env.update(extra_env or {})
        msg = _mb_message(env, port, work)  # also creates the schema
        url = msg["open_url"] if endpoint == "pixel" else msg["links"][0]["tracked_url"]
        if asgi == "uvicorn":
            cmd = [str(VBIN / "mailbeacon"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        else:
            subprocess.run(
                [str(VBIN / "mailbeacon"), "migrate"],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            env["MAILBEACON_BASE_URL"] = f"http://127.0.0.1:{port}"
            cmd = [str(VBIN / "granian"), *granian_args(port)]
        p = spawn(cmd, env=env, log_path=work / "server.log", cwd=work)
        wait_http(url, p)
        heads = curl_headers(url)
        recorded = re.search(r"^x-mailbeacon-recorded:\s*yes", heads, re.I | re.M) is not None
        check = "X-Mailbeacon-Recorded: yes" if recorded else "X-Mailbeacon-Recorded NOT yes"
        if not recorded:
            log(f"{label}: probe did not say recorded: {heads!r}")
        return Running(p, url, _mb_counter(env), work, check, lambda: _leaf_python(p.pid))

    if asgi == "uvicorn":
        command = "mailbeacon serve --host 127.0.0.1 --port PORT"
    else:
        command = "granian " + " ".join(granian_args("PORT"))
    env_txt = []
    if db:
        env_txt.append(f"MAILBEACON_DB={db}")
    if sync:
        env_txt.append(f"MAILBEACON_SQLITE_SYNC={sync}")
    command = " ".join([*env_txt, "taskset -c 0", command])
    return Server(key, label, "mailbeacon", start, command, note)


def granian_args(port: int | str) -> list[str]:
    return [
        "--interface",
        "asgi",
        "--factory",
        "mailbeacon.web.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--backlog",
        "4096",
        "--no-access-log",
    ]


def peer_server(key: str, label: str, workers: int = 1) -> Server:
    def start(endpoint: str, work: Path) -> Running:
        port = free_port()
        db = work / "peer.db"
        env = dict(
            os.environ, PYTRACKING_BENCH_DB=str(db), PATH=f"{VBIN}:{os.environ.get('PATH', '')}"
        )
        r = subprocess.run(
            [
                str(VBIN / "python"),
                str(REPO / "bench/peers/pytracking_app.py"),
                "urls",
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        urls = json.loads(r.stdout)
        url = urls["open_url"] if endpoint == "pixel" else urls["click_url"]
        p = spawn(
            [
                str(VBIN / "gunicorn"),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--backlog",
                "4096",
                "--no-control-socket",
                "--chdir",
                str(REPO),
                "bench.peers.pytracking_app:app",
            ],
            env=env,
            log_path=work / "server.log",
            cwd=work,
        )
        wait_http(url, p)
        status, _h, body = probe(url)
        check = f"HTTP {status}" + (", 43-byte GIF" if body == GIF_43 else "")
        return Running(p, url, lambda: sqlite_count(db), work, check, lambda: _leaf_python(p.pid))

    return Server(
        key,
        label,
        "peer",
        start,
        f"taskset -c 0 gunicorn -w {workers} -b 127.0.0.1:PORT --backlog 4096 "
        "--no-control-socket bench.peers.pytracking_app:app",
    )


def all_servers(endpoint: str) -> list[Server]:
    ref = "empty_gif" if endpoint == "pixel" else "return 302"
    return [
        Server(
            "nginx",
            f"nginx `{ref}`, access_log on",
            "nginx",
            _nginx_start,
            "taskset -c 0 nginx -c nginx.conf (worker_processes 1; see bench/_harness.py)",
        ),
        mailbeacon_server("mb", "mailbeacon serve (uvicorn+uvloop+httptools), SQLite FULL"),
        # The same with labelling off: the difference is what classification costs.
        mailbeacon_server(
            "mb-nolabel",
            "mailbeacon serve, SQLite FULL, labelling off (MAILBEACON_CLASSIFY=false)",
            extra_env={"MAILBEACON_CLASSIFY": "false"},
        ),
        mailbeacon_server(
            "mb-normal",
            "mailbeacon serve (uvicorn), SQLite synchronous=NORMAL",
            sync="normal",
            note="survives a process crash, not a power loss",
        ),
        mailbeacon_server(
            "mb-pg",
            "mailbeacon serve (uvicorn), PostgreSQL",
            db=PG_URL,
            note="the PostgreSQL backend is not pinned: it uses core 1 too",
        ),
        mailbeacon_server(
            "granian", "mailbeacon on granian (asgi, uvloop), SQLite FULL", asgi="granian"
        ),
        mailbeacon_server(
            "granian-pg",
            "mailbeacon on granian (asgi, uvloop), PostgreSQL",
            asgi="granian",
            db=PG_URL,
            note="the PostgreSQL backend is not pinned: it uses core 1 too",
        ),
        peer_server("peer", "pytracking on Flask/gunicorn -w 1 (sync), SQLite commit per hit"),
        peer_server(
            "peer-w2", "pytracking on Flask/gunicorn -w 2 (sync), SQLite commit per hit", 2
        ),
    ]


DEFAULT_SERVERS = ["nginx", "mb", "mb-normal", "mb-pg", "granian", "peer"]


# --- one measured run ------------------------------------------------------------


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


def measure(
    server: Server,
    endpoint: str,
    seconds: float,
    warmup: float,
    root: Path,
    profile_dir: Path | None = None,
) -> Run:
    for attempt in (1, 2, 3):
        work = Path(tempfile.mkdtemp(prefix=f"{server.key}-", dir=root))
        try:
            running = server.start(endpoint, work)
            break
        except Exception as exc:  # noqa: BLE001 - show why, retry on a new port
            for p in list(_procs):
                _procs.remove(p)
                _kill_group(p, grace=3.0)
            tail = ""
            with contextlib.suppress(OSError):
                tail = (work / "server.log").read_text(errors="replace")[-2000:]
            log(f"{server.key}: start failed (attempt {attempt}): {exc}\n{tail}")
            if attempt == 3:
                raise
    spy = None
    try:
        if warmup > 0:
            run_wrk(running.url, warmup)
            time.sleep(0.5)
        before = running.count() if running.count else 0
        sampler = RssSampler(running.proc.pid)
        sampler.start()
        if profile_dir is not None and running.server_pid is not None:
            spy = _start_py_spy(running.server_pid(), profile_dir, server.key, endpoint, seconds)
        w = run_wrk(running.url, seconds)
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
    return Run(w.rps, w.p50_ms, w.p99_ms, rss, w.answered, recorded, errs, running.check)


def _start_py_spy(pid: int, out: Path, key: str, endpoint: str, seconds: float) -> subprocess.Popen:
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
        ["taskset", "-c", CLIENT_CPU, *cmd],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{base}.log", "w"),
        start_new_session=True,
    )  # noqa: SIM115
    _procs.append(p)
    return p


# --- reporting ---------------------------------------------------------------------


@dataclass
class Row:
    server: Server
    runs: list[Run] = field(default_factory=list)

    def med(self, attr: str) -> float:
        vals = [getattr(r, attr) for r in self.runs]
        return statistics.median(vals) if vals else float("nan")


def _fmt_ratio(x: float) -> str:
    return "-" if x != x else f"{x:.2f}x"


def _pf(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def table(rows: list[Row], endpoint: str) -> tuple[str, list[str]]:
    by_key = {r.server.key: r for r in rows}
    nginx = by_key.get("nginx")
    peer = by_key.get("peer")
    n_rps = nginx.med("rps") if nginx else float("nan")
    p_rps = peer.med("rps") if peer else float("nan")
    lines = [
        "| server | hits/s | p50 ms | p99 ms | peak RSS MB | durable (rows of answered) | vs nginx | vs pytracking |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    verdicts = []
    for r in rows:
        rps, p50, p99, rss = r.med("rps"), r.med("p50_ms"), r.med("p99_ms"), r.med("rss_mb")
        ans = sum(x.answered for x in r.runs)
        if r.server.kind == "nginx":
            rec = sum(x.recorded or 0 for x in r.runs)
            durable = f"n/a (access log: {rec:,} lines of {ans:,})"
        else:
            rec = sum(x.recorded or 0 for x in r.runs)
            short = sum(1 for x in r.runs if (x.recorded or 0) < x.answered)
            durable = f"{rec:,} of {ans:,}" + ("" if short == 0 else f" ({short} run(s) short!)")
        errs = "; ".join(sorted({x.errors for x in r.runs if x.errors}))
        label = r.server.label + (f" [{errs}]" if errs else "")
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
            verdicts.append(f"- **{r.server.label}**: " + "; ".join(checks))
    return "\n".join(lines), verdicts


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
    v["nginx"] = _version(["nginx", "-v"], r"nginx/(\S+)")
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


def write_section(name: str, body: str) -> None:
    """Replace ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` in docs/benchmarks.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    if DOC.exists():
        text = DOC.read_text()
    else:
        text = (
            "# Benchmarks\n\n"
            'Measured figures for the targets in DESIGN.md ("Targets"). Each section is\n'
            "written by the script named in it; re-run the script to refresh it, and do not\n"
            "edit between the `<!-- bench:... -->` markers by hand.\n"
        )
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


# --- the command line shared by bench/pixel and bench/click -----------------------


def main(endpoint: str, argv: list[str] | None = None) -> int:
    title = {
        "pixel": "Pixel (open) hits: GET /o/<token>.gif",
        "click": "Click redirects: GET /c/<token> -> 302",
    }[endpoint]
    servers = {s.key: s for s in all_servers(endpoint)}
    ap = argparse.ArgumentParser(
        prog=f"bench/{endpoint}",
        description=title + ".\n\n" + __doc__.split("\n\n", 1)[1],
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
        help=f"comma list from: {', '.join(servers)} (default: %(default)s)",
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
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.repeat, args.warmup = 3.0, 1, 1.0
    chosen = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in servers]
    if unknown:
        ap.error(f"unknown server(s): {', '.join(unknown)}")
    for tool in ("nginx", "wrk", "taskset", "curl"):
        if not shutil.which(tool):
            ap.error(f"{tool} not found on PATH")
    if not (VBIN / "mailbeacon").exists():
        ap.error(f"{VBIN}/mailbeacon not found (set MAILBEACON_VENV)")
    if any(servers[k].start and "pg" in k for k in chosen) and not pg_available():
        log("PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL rows")
        chosen = [k for k in chosen if "pg" not in k]
    if (os.cpu_count() or 1) < 2:
        ap.error("needs 2 cores: server on core 0, wrk on core 1")

    install_cleanup()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})  # keep the harness off the server core
    root = Path(tempfile.mkdtemp(prefix=f"mailbeacon-bench-{endpoint}-"))
    if not args.keep:
        _cleanups.insert(0, lambda: shutil.rmtree(root, ignore_errors=True))
    command = (
        "bench/"
        + endpoint
        + (
            " " + shlex.join(argv if argv is not None else sys.argv[1:])
            if (argv if argv is not None else sys.argv[1:])
            else ""
        )
    )
    started = dt.datetime.now(dt.UTC)
    code = code_under_test()
    rows = [Row(servers[k]) for k in chosen]
    profile_dir = Path(args.profile).resolve() if args.profile else None
    try:
        for i in range(args.repeat):
            for row in rows:  # interleaved: run i of every server, then run i+1
                log(f"run {i + 1}/{args.repeat}: {row.server.key} ({args.duration:g}s)")
                prof = profile_dir if (i == 0 and row.server.kind != "nginx") else None
                run = measure(row.server, endpoint, args.duration, args.warmup, root, prof)
                row.runs.append(run)
                log(
                    f"  {run.rps:,.0f}/s p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms "
                    f"rss {run.rss_mb:.0f} MB recorded {run.recorded} of {run.answered} "
                    f"{run.errors} {run.check}"
                )
    finally:
        cleanup()
        pg_drop() if any("pg" in k for k in chosen) else None
    tbl, verdicts = table(rows, endpoint)
    v = versions()
    checks = sorted({r.check for row in rows for r in row.runs if r.check})
    body = f"""### {title}

Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; {args.repeat} run(s) x {args.duration:g} s
per server (after {args.warmup:g} s warm-up), servers interleaved, **medians** shown.
Server pinned to core 0 (`taskset -c 0`), load from core 1:
`taskset -c 1 wrk -t1 -c{CONNECTIONS} -d{args.duration:g}s --latency --timeout 2s URL`.
"durable" = rows in the events table after the run (server stopped gracefully) vs.
2xx/3xx responses wrk counted, summed over runs (rows can exceed answers by the few
requests still in flight when wrk stopped). RSS = peak summed VmRSS of the server's
process tree, sampled every 0.2 s.

Command: `{command}` (code under test: {code})

{tbl}

Targets (DESIGN.md: >= {T_NGINX} x nginx, >= {T_PEER:g} x pytracking, p99 <= {T_P99_MS:g} ms at {CONNECTIONS}
connections, RSS <= {T_RSS_MB:g} MB):

{chr(10).join(verdicts) if verdicts else "- no mailbeacon row measured"}

Pre-run probe (one `curl` per mailbeacon start): {", ".join(checks) or "-"}.

Servers:
{chr(10).join(f"- {r.server.label}: `{r.server.command}`" + (f" ({r.server.note})" if r.server.note else "") for r in rows)}

Versions: {", ".join(f"{k} {val}" for k, val in v.items())}.
"""
    print()
    print(body)
    if not args.no_write:
        write_section(endpoint, body)
        log(f"wrote the {endpoint} section of {DOC}")
    return 0
