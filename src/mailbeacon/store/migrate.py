"""Bring a database to the newest schema (``serve`` and every command do
this on start).

A database already at ``HEAD`` is answered by one read of
``alembic_version``, without importing alembic: loading it and its scripts
took ~0.3 s of every CLI command and server start.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from mailbeacon.store.db import is_sqlite, pg_session_lock

_SCRIPTS = str(Path(__file__).with_name("migrations"))
# Any constant works; it only has to be the same on every node so two nodes
# starting at once on one PostgreSQL database do not both run a migration.
_PG_LOCK_ID = 0x6D61696C62  # "mailb"
# The newest revision in migrations/versions; a test checks it is alembic's head.
HEAD = "0013_first_open"

if TYPE_CHECKING:
    from alembic.config import Config


def current(engine: Engine) -> str | None:
    """The database's revision; None before the first migration."""
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no such table yet
        return None
    return None if found is None else str(found)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current(engine) == HEAD:
        return
    from alembic import command

    cfg = _config()
    sqlite = is_sqlite(engine)
    with (
        engine.connect() as conn,
        nullcontext() if sqlite else pg_session_lock(conn, _PG_LOCK_ID),
    ):
        dangling: set[tuple[object, ...]] = set()
        if sqlite:
            # Rebuilding a table (SQLite's only way to change one) drops the
            # old copy, which with foreign keys on would cascade into every
            # table that references it. Only settable outside a transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            dangling = _dangling(conn)
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if sqlite and (broken := _dangling(conn) - dangling):
                conn.rollback()
                raise RuntimeError(f"migration broke references: {sorted(broken)[:5]}")
            conn.commit()
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _dangling(conn: Connection) -> set[tuple[object, ...]]:
    """SQLite rows whose foreign key points nowhere (kept as they were found)."""
    return {tuple(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()}
