"""Engines and the few places SQLite and PostgreSQL differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

# How long a SQLite connection waits for another writer before giving up.
# The API and the recorder share one file; commits take ~1-5 ms, so 5 s is
# only reached when something holds the file locked (the store is "down").
SQLITE_BUSY_MS = 5000


def make_engine(url: str, *, sqlite_sync: str = "full", pool: bool = True) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
            poolclass=None if pool else NullPool,
        )
        sync = "FULL" if sqlite_sync == "full" else "NORMAL"

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL: readers never block the writer; with synchronous=FULL each
            # commit is fsynced, so an acknowledged hit survives power loss.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        poolclass=None if pool else NullPool,
        connect_args={"connect_timeout": 5},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def placeholder(engine: Engine) -> str:
    """The DB-API parameter marker: sqlite3 uses ``?``, psycopg ``%s``."""
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


def is_data_error(exc: BaseException) -> bool:
    """True when a write failed for the values written, not for the store.

    Retrying the same rows would fail the same way forever, while other rows
    would be written: the recorder isolates such rows instead of treating the
    store as down. The Python errors are raised while encoding a row (a value
    no driver can bind); the driver classes are SQLSTATE classes 22 and 23.
    """
    import sqlite3

    import psycopg

    return isinstance(
        exc,
        (
            ValueError,
            TypeError,
            OverflowError,
            sqlite3.DataError,
            sqlite3.IntegrityError,
            psycopg.DataError,
            psycopg.IntegrityError,
        ),
    )
