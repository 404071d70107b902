"""The servers under test: what a started server looks like, nginx (the reference), the peer.

Each ``Server.start(endpoint, workdir, workers)`` starts one fresh server pinned to
the server core(s) and returns the URL to drive and a way to count durable rows.
mailbeacon itself is in ``mbserver.py``; the menu of keys in ``menu.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .procs import (
    GIF_43,
    REPO,
    VBIN,
    free_port,
    leaf_python,
    probe,
    server_cpus,
    spawn,
    tool,
    wait_http,
)
from .stores import sqlite_count


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
    kind: str  # "nginx" | "mailbeacon" | "peer" | "floor"
    start: Callable[[str, Path, int], Running]  # (endpoint "pixel"|"click", workdir, workers)
    command: Callable[[int], str]  # the command line shown for a worker count
    note: str = ""
    needs: frozenset[str] = frozenset()  # tools and venv packages (see prereqs.py)
    on_pg: bool = False  # skipped, and said so, when PostgreSQL is not reachable
    scales: bool = False  # also measured with --workers N (N workers on cores 0..N-1)

    def label_for(self, workers: int) -> str:
        """The row's name; ``{workers}`` in the label stands for the worker count."""
        if workers == 1:
            return self.label.replace("{workers}", "1")
        text = self.label.replace("{workers}", str(workers))
        if "{workers}" not in self.label:
            text += f", {workers} workers"
        return f"{text} (cores {server_cpus(workers)})"


# --- nginx: the reference ------------------------------------------------------------


def _nginx_start(endpoint: str, work: Path, workers: int) -> Running:
    port = free_port()
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / d).mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""\
worker_processes {workers};
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
        [tool("nginx") or "nginx", "-e", str(work / "error.log"), "-p", str(work), "-c", str(conf)],
        log_path=work / "server.log",
        cpus=server_cpus(workers),
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


def nginx_server(endpoint: str) -> Server:
    ref = "empty_gif" if endpoint == "pixel" else "return 302"
    return Server(
        "nginx",
        f"nginx `{ref}`, access_log on",
        "nginx",
        _nginx_start,
        lambda w: (
            f"taskset -c {server_cpus(w)} nginx -c nginx.conf "
            f"(worker_processes {w}; see bench/_harness/servers.py)"
        ),
        needs=frozenset({"nginx"}),
        scales=True,
    )


# --- the naive Python peer -------------------------------------------------------------


def peer_server(key: str, label: str, fixed_workers: int | None = None) -> Server:
    """gunicorn -w N, N = the run's worker count, or ``fixed_workers`` all on core 0."""

    def start(endpoint: str, work: Path, workers: int) -> Running:
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
                str(fixed_workers or workers),
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
            cpus=server_cpus(workers),
        )
        wait_http(url, p)
        status, _h, body = probe(url)
        check = f"HTTP {status}" + (", 43-byte GIF" if body == GIF_43 else "")
        return Running(p, url, lambda: sqlite_count(db), work, check, lambda: leaf_python(p.pid))

    def command(workers: int) -> str:
        return (
            f"taskset -c {server_cpus(workers)} gunicorn -w {fixed_workers or workers} "
            "-b 127.0.0.1:PORT --backlog 4096 --no-control-socket bench.peers.pytracking_app:app"
        )

    return Server(
        key,
        label,
        "peer",
        start,
        command,
        needs=frozenset({"gunicorn", "flask", "pytracking"}),
        scales=fixed_workers is None,
    )


# --- the HTTP floor: Python servers that record nothing ----------------------------------


def floor_server(key: str, label: str, how: str) -> Server:
    """bench/peers/floor.py: ``how`` is "asgi" (uvicorn, as serve runs it) or "raw"."""

    def argv(port: int | str) -> list[str]:
        if how == "asgi":
            return [
                str(VBIN / "python"), "-m", "uvicorn", "bench.peers.floor:app",
                "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--backlog", "4096", "--no-access-log",
                "--log-level", "warning",
            ]  # fmt: skip
        return [str(VBIN / "python"), str(REPO / "bench/peers/floor.py"), "raw", str(port)]

    def start(endpoint: str, work: Path, workers: int) -> Running:
        port = free_port()
        p = spawn(argv(port), log_path=work / "server.log", cwd=REPO, cpus=server_cpus(workers))
        path = "/o/AW8BAZP0LzjS_sRNFPpv-7D4aVI.gif" if endpoint == "pixel" else "/c/AWMBAQ"
        url = f"http://127.0.0.1:{port}{path}"
        wait_http(url, p)
        status, _h, body = probe(url)
        check = f"HTTP {status}" + (", 43-byte GIF" if body == GIF_43 else "")
        return Running(p, url, None, work, check, lambda: leaf_python(p.pid))

    def command(workers: int) -> str:
        shown = " ".join(argv("PORT")).replace(str(VBIN) + "/", "").replace(str(REPO) + "/", "")
        return f"taskset -c {server_cpus(workers)} {shown}"

    # uvloop and httptools come with mailbeacon's own dependencies (uvicorn[standard]).
    return Server(key, label, "floor", start, command)
