"""The servers under test: nginx (reference), mailbeacon (uvicorn, granian), the pytracking peer.

Each ``Server.start(endpoint, workdir)`` starts one fresh server pinned to the
server core and returns the URL to drive and a way to count durable rows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .procs import (
    GIF_43,
    REPO,
    VBIN,
    at_cleanup,
    curl_headers,
    free_port,
    leaf_python,
    log,
    probe,
    spawn,
    tool,
    wait_http,
)
from .stores import PG_DB, PG_URL, PG_URL_SHOWN, pg, pg_drop, pg_recreate, sqlite_count


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
    needs: frozenset[str] = frozenset()  # tools and venv packages (see prereqs.py)
    on_pg: bool = False  # skipped, and said so, when PostgreSQL is not reachable


# --- nginx: the reference ------------------------------------------------------------


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
        [tool("nginx") or "nginx", "-e", str(work / "error.log"), "-p", str(work), "-c", str(conf)],
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


# --- mailbeacon ----------------------------------------------------------------------


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
            at_cleanup(pg_drop)
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
        return Running(p, url, _mb_counter(env), work, check, lambda: leaf_python(p.pid))

    if asgi == "uvicorn":
        command = "mailbeacon serve --host 127.0.0.1 --port PORT"
    else:
        command = "granian " + " ".join(granian_args("PORT"))
    env_txt = []
    if db:
        env_txt.append(f"MAILBEACON_DB={PG_URL_SHOWN if db == PG_URL else db}")
    if sync:
        env_txt.append(f"MAILBEACON_SQLITE_SYNC={sync}")
    command = " ".join([*env_txt, "taskset -c 0", command])
    needs = {"mailbeacon", "curl"} | ({"granian"} if asgi == "granian" else set())
    on_pg = bool(db and db.startswith("postgresql"))
    return Server(key, label, "mailbeacon", start, command, note, frozenset(needs), on_pg)


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


# --- the naive Python peer -------------------------------------------------------------


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
        return Running(p, url, lambda: sqlite_count(db), work, check, lambda: leaf_python(p.pid))

    return Server(
        key,
        label,
        "peer",
        start,
        f"taskset -c 0 gunicorn -w {workers} -b 127.0.0.1:PORT --backlog 4096 "
        "--no-control-socket bench.peers.pytracking_app:app",
        needs=frozenset({"gunicorn", "flask", "pytracking"}),
    )


# --- the menu ---------------------------------------------------------------------------


def all_servers(endpoint: str) -> list[Server]:
    ref = "empty_gif" if endpoint == "pixel" else "return 302"
    return [
        Server(
            "nginx",
            f"nginx `{ref}`, access_log on",
            "nginx",
            _nginx_start,
            "taskset -c 0 nginx -c nginx.conf (worker_processes 1; see bench/_harness/servers.py)",
            needs=frozenset({"nginx"}),
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
