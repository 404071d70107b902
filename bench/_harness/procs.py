"""Processes the harness starts: spawn pinned, stop gracefully, kill on exit, watch RSS.

Every server runs in its own process group and dies with the harness (normal
end, exception, Ctrl-C, SIGTERM); ports are random free ports on 127.0.0.1 and
every wait is time-bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
VENV = Path(os.environ.get("MAILBEACON_VENV", REPO / ".venv"))
VBIN = VENV / "bin"
SERVER_CPU = "0"
CLIENT_CPU = "1"


def server_cpus(workers: int) -> str:
    """The cores a server with ``workers`` workers is pinned to: 0 .. workers-1."""
    return SERVER_CPU if workers == 1 else f"0-{workers - 1}"


def client_cpus(workers: int) -> str:
    """Where wrk runs: the next free core, or every core when the server has them all.

    On this 2-core machine ``--workers 2`` leaves no core for the load generator,
    so wrk shares both with the server (see bench/README.md, "--workers").
    """
    cores = os.cpu_count() or 1
    if workers == 1:
        return CLIENT_CPU
    return str(workers) if workers < cores else f"0-{cores - 1}"


GIF_43 = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def tool(name: str) -> str | None:
    """Full path of a command; /usr/sbin counts too (Debian's nginx is there, off a user's PATH)."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- bookkeeping: everything we start dies with us ---------------------------------

_procs: list[subprocess.Popen] = []
_cleanups: list[Callable[[], None]] = []


def _signal_and_wait(p: subprocess.Popen, sig: int, grace: float) -> bool:
    """Send ``sig`` to ``p``'s process group, wait up to ``grace`` s; True once it exited."""
    if p.poll() is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, sig)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill_group(p: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group we created for ``p``, then SIGKILL it."""
    _signal_and_wait(p, signal.SIGTERM, grace)
    # Children (nginx worker, gunicorn worker, granian worker) may outlive the leader.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(5)


def kill_started() -> None:
    """Kill every process started so far (a failed start leaves no stragglers)."""
    for p in list(_procs):
        _procs.remove(p)
        kill_group(p, grace=3.0)


def track(p: subprocess.Popen) -> subprocess.Popen:
    """Kill ``p`` with the rest on exit."""
    _procs.append(p)
    return p


def at_cleanup(fn: Callable[[], None], *, first: bool = False) -> None:
    """Run ``fn`` on exit, after the processes are gone (``first``: before the others)."""
    if first:
        _cleanups.insert(0, fn)
    else:
        _cleanups.append(fn)


def cleanup() -> None:
    while _procs:
        kill_group(_procs.pop(), grace=3.0)
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
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path,
    cwd: Path | None = None,
    cpus: str = SERVER_CPU,
) -> subprocess.Popen:
    """Start ``cmd`` pinned to the server core(s), in its own process group."""
    out = open(log_path, "ab")
    p = subprocess.Popen(
        ["taskset", "-c", cpus, *cmd],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    out.close()
    return track(p)


def stop(p: subprocess.Popen, grace: float = 15.0) -> None:
    """Graceful stop (the recorder flushes its queue on shutdown), then make sure."""
    if p in _procs:
        _procs.remove(p)
    if not _signal_and_wait(p, signal.SIGINT, grace):
        log(f"pid {p.pid} did not stop on SIGINT within {grace}s")
    kill_group(p, grace=3.0)


# --- ports and HTTP ---------------------------------------------------------------


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


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


# --- process trees: RSS and the process py-spy should watch -------------------------


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


def leaf_python(root: int) -> int:
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
