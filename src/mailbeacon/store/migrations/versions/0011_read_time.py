"""Read time: how long a direct reader kept the message open (docs/read-time.md).

``events.read_seconds`` is set once, when a streamed pixel's connection ends;
``message_stats.read_at`` is when a message first had an open measured as
"read", so the campaign's read rate counts each message once.

Revision ID: 0011_read_time
Revises: 0010_replies
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_read_time"
down_revision = "0010_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column with no default: both stores add it without
    # rewriting the table (SQLite's ADD COLUMN, PostgreSQL's catalog-only add),
    # so this is instant even with millions of events.
    op.add_column("events", sa.Column("read_seconds", sa.Float))
    op.add_column("message_stats", sa.Column("read_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("message_stats") as batch:
        batch.drop_column("read_at")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("read_seconds")
