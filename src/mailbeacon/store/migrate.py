"""Bring a database to the newest schema (``serve`` does this on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from mailbeacon.store.db import is_sqlite

_SCRIPTS = str(Path(__file__).with_name("migrations"))
# Any constant works; it only has to be the same on every node so two nodes
# starting at once on one PostgreSQL database do not both run a migration.
_PG_LOCK_ID = 0x6D61696C62  # "mailb"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    sqlite = is_sqlite(engine)
    with engine.connect() as conn:
        if not sqlite:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
            conn.commit()
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
            if not sqlite:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                conn.commit()
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _dangling(conn: Connection) -> set[tuple[object, ...]]:
    """SQLite rows whose foreign key points nowhere (kept as they were found)."""
    return {tuple(r) for r in conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()}
