"""mailbeacon under test: ``mailbeacon serve`` (uvicorn) or granian, on SQLite or PostgreSQL.

Each start gets a fresh data directory (and a fresh PostgreSQL database), creates
one message with the CLI and drives its pixel or its first tracked link.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from .procs import (
    VBIN,
    at_cleanup,
    curl_headers,
    free_port,
    leaf_python,
    log,
    server_cpus,
    spawn,
    wait_http,
)
from .servers import Running, Server
from .stores import PG_DB, PG_URL, PG_URL_SHOWN, pg, pg_drop, pg_recreate, sqlite_count


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
    def start(endpoint: str, work: Path, workers: int) -> Running:
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
            cmd = [str(VBIN / "mailbeacon"), *serve_args(port, workers)]
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
        cpus = server_cpus(workers)
        p = spawn(cmd, env=env, log_path=work / "server.log", cwd=work, cpus=cpus)
        wait_http(url, p)
        heads = curl_headers(url)
        recorded = re.search(r"^x-mailbeacon-recorded:\s*yes", heads, re.I | re.M) is not None
        check = "X-Mailbeacon-Recorded: yes" if recorded else "X-Mailbeacon-Recorded NOT yes"
        if not recorded:
            log(f"{label}: probe did not say recorded: {heads!r}")
        return Running(p, url, _mb_counter(env), work, check, lambda: leaf_python(p.pid))

    env_txt = []
    if db:
        env_txt.append(f"MAILBEACON_DB={PG_URL_SHOWN if db == PG_URL else db}")
    if sync:
        env_txt.append(f"MAILBEACON_SQLITE_SYNC={sync}")

    def command(workers: int) -> str:
        if asgi == "uvicorn":
            cmd = "mailbeacon " + " ".join(serve_args("PORT", workers))
        else:
            cmd = "granian " + " ".join(granian_args("PORT"))
        return " ".join([*env_txt, f"taskset -c {server_cpus(workers)}", cmd])

    needs = {"mailbeacon", "curl"} | ({"granian"} if asgi == "granian" else set())
    on_pg = bool(db and db.startswith("postgresql"))
    # granian's own --workers would run N independent apps; mailbeacon's workers
    # (one writer, background jobs once) come with `serve --workers`.
    scales = asgi == "uvicorn"
    return Server(key, label, "mailbeacon", start, command, note, frozenset(needs), on_pg, scales)


@functools.cache
def serve_has_workers() -> bool:
    """Whether ``mailbeacon serve`` takes ``--workers`` (issue 16 adds it)."""
    try:
        r = subprocess.run(
            [str(VBIN / "mailbeacon"), "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(r"(?<![\w-])--workers\b", r.stdout) is not None


def serve_args(port: int | str, workers: int) -> list[str]:
    """``mailbeacon serve`` arguments; ``--workers`` always when serve has it.

    Passing ``--workers 1`` explicitly keeps the one-core rows at one worker once
    serve's default becomes the number of cores.
    """
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if serve_has_workers():
        args += ["--workers", str(workers)]
    return args


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
