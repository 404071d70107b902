"""Ids are never reused: SQLite tables of campaigns, messages and events get AUTOINCREMENT.

Without it SQLite hands out max(rowid) + 1, so after ``recipient erase``
deleted the newest message the next message got the erased one's id, and the
erased person's old pixel and links (and their later hits) counted on someone
else's message. Links belong to their message (key: message id, position),
so they follow. PostgreSQL needs nothing: its BIGSERIAL sequences never hand
out a value twice.

SQLite cannot add AUTOINCREMENT to a table, so each table is rebuilt (copied:
on a 10M-event database this takes about a minute and twice the events'
space for a moment). The new sequence starts above every id still referenced
anywhere, so ids already erased before this migration are not handed out
again either, as far as any row remembers them.

It comes after 0008_privacy_erase (merged first), so databases already at
0008 go on from there; the rebuild keeps 0008's index on lower(recipient),
which SQLAlchemy cannot reflect (an expression), by re-creating every index
the rebuild lost from its own SQL.

Revision ID: 0006_no_reuse
Revises: 0008_privacy_erase
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0006_no_reuse"
down_revision = "0008_privacy_erase"
branch_labels = None
depends_on = None

# table -> the (table, column) pairs that may hold one of its ids
_REFERENCES = {
    "campaigns": (
        ("campaigns", "id"),
        ("messages", "campaign_id"),
        ("message_stats", "campaign_id"),
        ("link_stats", "campaign_id"),
        ("counters", "campaign_id"),
    ),
    "messages": (
        ("messages", "id"),
        ("links", "message_id"),
        ("events", "message_id"),
        ("message_stats", "message_id"),
        ("link_stats", "message_id"),
        ("outbox", "message_id"),
    ),
    "events": (("events", "id"), ("outbox", "event_id")),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Rebuilding a table drops the old one, and with foreign keys on that
        # deletes (CASCADE) every link and unsets (SET NULL) every campaign.
        raise RuntimeError(
            "migration 0006 must run with PRAGMA foreign_keys=OFF; run `mailbeacon migrate`"
        )
    for table, refs in _REFERENCES.items():
        indexes = _indexes(bind, table)
        with warnings.catch_warnings():
            # "Skipped unsupported reflection of expression-based index":
            # re-created below from its SQL.
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass
        for name, sql in indexes.items():
            if name not in _indexes(bind, table):
                bind.exec_driver_sql(sql)
        floor = max(
            bind.exec_driver_sql(f"SELECT COALESCE(MAX({col}), 0) FROM {t}").scalar() or 0
            for t, col in refs
        )
        done = bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = MAX(seq, :n) WHERE name = :t"),
            {"n": floor, "t": table},
        ).rowcount
        if not done and floor:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"),
                {"n": floor, "t": table},
            )


def _indexes(bind: sa.Connection, table: str) -> dict[str, str]:
    """The table's explicit indexes (not the automatic ones), with their SQL."""
    rows = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table,),
    ).fetchall()
    return {name: sql for name, sql in rows}


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in _REFERENCES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
