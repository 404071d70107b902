"""Engines and the few places SQLite and PostgreSQL differ."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

# How long a SQLite connection waits for another writer before giving up.
# The API and the recorder share one file; commits take ~1-5 ms, so 5 s is
# only reached when something holds the file locked (the store is "down").
SQLITE_BUSY_MS = 5000
# The WAL is reused from its start after each checkpoint but keeps the size
# of its largest burst; past this it is cut back once checkpointed (a purge
# or a stalled reader's backlog otherwise leaves hundreds of MB behind).
SQLITE_WAL_LIMIT = 64 * 1024 * 1024


def _as_null(_value: None) -> None:
    return None


def make_engine(url: str, *, sqlite_sync: str = "full", pool: bool = True) -> Engine:
    if url.startswith("sqlite"):
        # Python's sqlite3 binds int, float, str and bytearray directly but
        # sends anything else, None included, through its adapter lookup,
        # which fails twice with an AttributeError before binding NULL: ~3,300
        # instructions a value (callgrind), and a pixel's row has three NULLs.
        # With an adapter registered, None is one dict hit and a call.
        # Process-wide, and it binds what was bound before: NULL.
        sqlite3.register_adapter(type(None), _as_null)
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
            cur.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT}")
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


def damage(engine: Engine) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds in a SQLite file, or None.

    A page damaged in the middle of the file (a disk error, a copy taken
    while it was written) goes unnoticed until a query reads it: the server
    would start and then fail hit after hit. quick_check reads every page
    (~1 s per 100 MB) but skips the slower index-content comparison of
    integrity_check (~5x the time). PostgreSQL checks its own pages: None.
    """
    if not is_sqlite(engine):
        return None
    try:
        with engine.connect() as conn:
            found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    except DBAPIError as exc:  # so damaged that it does not even open
        return str(exc.orig)
    problems = [f for f in found if f != "ok"]
    return problems[0] if problems else None


def is_sqlite(engine: Engine) -> bool:
    """The one dialect test: everything else is PostgreSQL."""
    return engine.dialect.name == "sqlite"


class WriterTurn:
    """Whose turn it is to write one SQLite file, across processes.

    With ``serve --workers N`` each process has its own writer. SQLite lets
    one write at a time and makes the others wait in its busy handler, which
    *sleeps* (1, 2, 5 ... 100 ms) and polls: under load a writer slept
    through the other's short commits, p99 rose from ~10 ms to ~1 s and two
    workers did less than one. An exclusive ``flock`` on a file beside the
    database (``<db>-writer.lock``) queues the writers in the kernel instead,
    which wakes the next one the moment the lock is let go (and frees it if
    its holder dies). PostgreSQL and in-memory databases need no turn.
    """

    def __init__(self, engine: Engine) -> None:
        path = engine.url.database if is_sqlite(engine) else None
        self._fd: int | None = None
        if path and path != ":memory:" and not path.startswith("file:"):
            self._fd = os.open(f"{path}-writer.lock", os.O_CREAT | os.O_RDWR, 0o600)

    def close(self) -> None:
        """Let the lock file go (a turn made for one piece of work)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def begin_write(cur: Any, sqlite: bool) -> None:
    """Start a write transaction on a raw cursor.

    SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock now (waiting up
    to the busy timeout), so a transaction that reads and then writes never
    fails to upgrade its lock halfway. PostgreSQL: the driver has already
    begun one; rows are locked by ``FOR UPDATE`` where it matters.
    """
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")


@contextmanager
def write_cursor(engine: Engine, *, wait_for_disk: bool = True) -> Iterator[Any]:
    """A raw DB-API cursor in one write transaction: committed when the block
    ends, rolled back if it raises. For the few hot or locking statements
    written in SQL; with :func:`placeholder` for the parameter marker.

    ``wait_for_disk=False`` (SQLite only; PostgreSQL commits as always): the
    commit is written to the WAL but not fsynced (``synchronous=NORMAL``
    for this transaction). It survives a crash of the process, not a power
    failure, until the next commit that waits for the disk covers it (the
    WAL is written in order). Only for a commit nothing is acknowledged on
    (the relay's messages, before the submission's own commit)."""
    sqlite = is_sqlite(engine)
    raw = engine.raw_connection()
    was = None  # the connection's own synchronous, put back before it goes back to the pool
    try:
        cur = raw.cursor()
        if sqlite and not wait_for_disk:  # before BEGIN: SQLite refuses it inside a transaction
            was = int(cur.execute("PRAGMA synchronous").fetchone()[0])
            cur.execute("PRAGMA synchronous=NORMAL")
        begin_write(cur, sqlite)
        yield cur
        raw.commit()
        cur.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        if was is not None:
            try:
                raw.cursor().execute(f"PRAGMA synchronous={was}")
            except sqlite3.Error:
                raw.invalidate()  # never handed out again with a weaker setting
        raw.close()


@contextmanager
def pg_session_lock(conn: Connection, key: int) -> Iterator[None]:
    """A PostgreSQL advisory lock held on ``conn`` for the block, across its
    transactions (other processes asking for ``key`` wait); the server lets
    it go if the connection dies."""
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    conn.commit()
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()


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


def is_store_down(exc: BaseException) -> bool:
    """True when the store could not be reached or could not write: a
    connection refused or lost, a file locked past the busy timeout, no
    pooled connection in time. Worth "try again later"; not a bug. The
    driver's own errors count too: the hot writes use its cursor directly."""
    import sqlite3

    import psycopg
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(
        exc,
        (
            OperationalError,
            InterfaceError,
            PoolTimeout,
            sqlite3.OperationalError,
            sqlite3.InterfaceError,
            psycopg.OperationalError,
            psycopg.InterfaceError,
        ),
    )
