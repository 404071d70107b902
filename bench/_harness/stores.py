"""Counting durable rows: SQLite files read directly, PostgreSQL through ``psql``."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtAX"]
PG_DB = "mb_bench"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"


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
