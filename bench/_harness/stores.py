"""Counting durable rows: SQLite files read directly, PostgreSQL through ``psql``."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

from .procs import tool

# -w: never prompt for a password (a prompt would hang the run); trust auth is expected.
PG_ADMIN = [
    "psql",
    "-w",
    "-h",
    "127.0.0.1",
    "-p",
    "5432",
    "-U",
    "postgres",
    "-v",
    "ON_ERROR_STOP=1",
    "-qtAX",
]
# One database per harness run: engineers share this machine and its PostgreSQL.
PG_DB = f"mb_bench_{os.getpid()}"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
PG_URL_SHOWN = "postgresql://postgres@127.0.0.1:5432/mb_bench_PID"


def sqlite_count(db: Path, table: str = "events") -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def pg(sql: str, db: str = "postgres") -> str:
    r = subprocess.run(
        [*PG_ADMIN, "-d", db, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()}")
    return r.stdout.strip()


def pg_problem() -> str | None:
    """Why the PostgreSQL rows cannot run (one line), or None when they can."""
    if tool("psql") is None:
        return "psql not found: run bench/setup (or: sudo apt-get install postgresql-client)"
    try:
        pg("SELECT 1")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[0].removeprefix("psql: ")
        return f"PostgreSQL not reachable on 127.0.0.1:5432 as postgres with trust auth ({first})"
    return None


def pg_recreate() -> None:
    pg(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
    pg(f"CREATE DATABASE {PG_DB}")


def pg_drop() -> None:
    with contextlib.suppress(Exception):
        pg(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
