"""Helpers for tests: a real server process, the CLI, PostgreSQL admin."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import psycopg

T = TypeVar("T")

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The banner line `serve` prints once its socket is bound.
LISTENING = re.compile(r"mailbeacon listening on http://127\.0\.0\.1:(\d+)")


@contextmanager
def pg_admin() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        yield conn


def engine_at(db_url: str, revision: str) -> Any:
    """An engine on a store migrated only up to ``revision``, to test what a
    later migration does to existing rows (the PostgreSQL fixture's copy is at
    head: it is dropped and made afresh)."""
    from mailbeacon.config import normalise_db_url
    from mailbeacon.store import make_engine, upgrade

    if db_url.startswith("postgresql"):
        name = db_url.rsplit("/", 1)[1]
        with pg_admin() as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(normalise_db_url(db_url))
    upgrade(engine, revision)
    return engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    *args: str,
    db: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m mailbeacon ARGS` and return the finished process."""
    cmd = [sys.executable, "-m", "mailbeacon"]
    if db:
        cmd += ["--db", db]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=full_env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mailbeacon {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def recorded(r: httpx.Response) -> str:
    """The first word of X-Mailbeacon-Recorded ("yes" or "no"; a reason may follow)."""
    return r.headers["x-mailbeacon-recorded"].split(";")[0]


def create_key(db: str, name: str = "test") -> str:
    """An API key for a test's server, made in process: a `keys create`
    subprocess per server start cost ~0.5 s (the command itself has its own
    tests)."""
    from mailbeacon.store import keys, make_engine

    engine = make_engine(db)
    try:
        return keys.create_api_key(engine, name)[1]
    finally:
        engine.dispose()


class Running:
    """What tests use of a running mailbeacon through its API: a real `serve`
    process (Server) or the app in this process (tests/inprocess.py)."""

    db: str

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        raise NotImplementedError

    def session(self) -> httpx.Client:
        """A client of its own (its own cookies, no API key), as a browser is."""
        raise NotImplementedError

    def message(self, **body: Any) -> dict[str, Any]:
        body.setdefault("recipient", "reader@example.com")
        r = self.api("POST", "/api/v1/messages", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def events(self, message_id: int) -> list[dict[str, Any]]:
        r = self.api("GET", f"/api/v1/messages/{message_id}/events", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return list(r.json())


@dataclass
class Server(Running):
    db: str
    port: int
    proc: subprocess.Popen[bytes]
    key: str
    log: Path
    extra_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=15, **kw
        )

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.client() as c:
            return c.request(method, path, **kw)

    def session(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill(signal.SIGKILL)
        fresh = start_server(
            self.db,
            self.log.parent,
            key=self.key,
            port=self.port,
            extra_args=self.extra_args,
            env=self.env,
        )
        self.proc, self.log = fresh.proc, fresh.log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    db: str,
    workdir: Path,
    *,
    key: str | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    module: str = "mailbeacon",
) -> Server:
    """`python -m MODULE --db DB serve ...` (MODULE: mailbeacon, or a wrapper of it),
    waited for until it answers.

    Without ``port`` the server binds port 0 and the port it got is read from
    its banner: no window in which a parallel test can take a port we picked.
    ``port`` is for restarts, which must keep the address their links use.
    """
    # An explicit --db must exist for every command but serve/migrate/init:
    # without a key given, serve creates the database and the key comes after.
    key_given = key
    log = workdir / f"serve-{time.monotonic_ns()}.log"
    full_env = {**os.environ, **(env or {})}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "--db",
                db,
                "serve",
                "--port",
                str(port or 0),
                *extra_args,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    srv = Server(
        db=db, port=0, proc=proc, key=key or "", log=log, extra_args=extra_args, env=dict(env or {})
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{srv.output()}")
        found = LISTENING.search(srv.output())
        if found:
            srv.port = int(found.group(1))
            try:
                if httpx.get(f"{srv.url}/healthz", timeout=1).status_code in (200, 503):
                    srv.key = key_given or create_key(db)
                    return srv
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not come up:\n{srv.output()}")


def execute(db: str, sql: str, params: Sequence[Any] = ()) -> None:
    """Change the store directly (to age rows, or set up what an old version left)."""
    if db.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(db[len("sqlite:///") :]) as conn:
            conn.execute(sql, params)
        return
    with psycopg.connect(db) as pconn:
        pconn.execute(sql.replace("?", "%s"), params)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Lines:
    """Lines of a child's pipe, read by a thread, so a wait for one has a deadline
    (a bare ``readline()`` on a pipe blocks forever when nothing comes)."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def next(self, timeout: float) -> str | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


def rows(db: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the store directly (to check what really is on disk)."""
    if db.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(db[len("sqlite:///") :]) as conn:
            return list(conn.execute(sql, params).fetchall())
    with psycopg.connect(db) as pconn:
        return list(pconn.execute(sql.replace("?", "%s"), params).fetchall())


def cells(db: str) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) of every cell of every table: the database as a
    thief with a copy of it sees it, so a table added later is covered too."""
    import warnings

    from sqlalchemy import MetaData, select

    from mailbeacon.store import make_engine

    engine = make_engine(db)
    meta = MetaData()
    with warnings.catch_warnings():  # SQLAlchemy skips expression indexes: fine here
        warnings.simplefilter("ignore")
        meta.reflect(engine)
    try:
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    for col, value in row._mapping.items():
                        yield table.name, col, value
    finally:
        engine.dispose()


def cells_containing(db: str, *needles: str) -> list[str]:
    """Every "table.column" whose stored text contains one of the needles, in any case."""
    low = [n.lower() for n in needles]
    return sorted({f"{t}.{c}" for t, c, v in cells(db) if any(n in str(v).lower() for n in low)})


@contextmanager
def outage(db: str) -> Iterator[None]:
    """Make the store refuse writes, then bring it back."""
    if db.startswith("sqlite:///"):
        conn = sqlite3.connect(db[len("sqlite:///") :], isolation_level=None, timeout=10)
        conn.execute("BEGIN EXCLUSIVE")  # holds the write lock: every writer times out
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    name = db.rsplit("/", 1)[1]
    with pg_admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def wait_for(
    fn: Callable[[], T | None],
    what: str = "the condition",
    timeout: float = 30.0,
    every: float = 0.05,
) -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def job_rounds(url: str, job: str) -> int:
    """Passes background ``job`` has finished on the server at ``url`` (/metrics)."""
    text = httpx.get(url + "/metrics", timeout=15).text
    m = re.search(rf'^mailbeacon_job_rounds_total\{{job="{job}"\}} ([\d.e+]+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


def wait_rounds(url: str, job: str, n: int, timeout: float = 60.0) -> None:
    """Wait until ``job`` has finished ``n`` more passes on that server: what a
    test that checks that nothing *else* happens waits for, instead of a sleep."""
    start = job_rounds(url, job)
    wait_for(lambda: job_rounds(url, job) >= start + n, f"{n} rounds of {job}", timeout)
