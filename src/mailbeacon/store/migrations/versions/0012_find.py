"""Finding messages and tidying campaigns: the message list's order, archiving.

``message_stats.created_at`` copies the message's creation time so "last
activity" (the last human open, click or reply, else creation) is one
expression over one table, and two indexes on it let the message list page
by keyset without sorting (reports/messages.py). ``campaigns.archived_at``
hides a campaign from the lists without deleting anything.

Revision ID: 0012_find
Revises: 0011_read_time
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_find"
down_revision = "0011_read_time"
branch_labels = None
depends_on = None

ACTIVITY = "coalesce(last_human_at, created_at)"


def upgrade() -> None:
    with op.batch_alter_table("message_stats") as batch:
        batch.add_column(sa.Column("created_at", sa.Float))
    op.execute(
        "UPDATE message_stats SET created_at = "
        "(SELECT m.created_at FROM messages m WHERE m.id = message_stats.message_id)"
    )
    op.create_index("ix_message_stats_activity", "message_stats", [sa.text(ACTIVITY), "message_id"])
    op.create_index(
        "ix_message_stats_campaign_activity",
        "message_stats",
        ["campaign_id", sa.text(ACTIVITY), "message_id"],
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("archived_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("archived_at")
    op.drop_index("ix_message_stats_campaign_activity", "message_stats")
    op.drop_index("ix_message_stats_activity", "message_stats")
    with op.batch_alter_table("message_stats") as batch:
        batch.drop_column("created_at")
