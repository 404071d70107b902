"""Rollups: per-message state and additive counters, kept in the write transaction.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN_LABELS = (
    "human_direct",
    "human_via_proxy",
    "machine_prefetch",
    "security_scanner",
    "bot_other",
    "self",
)
CLICK_LABELS = ("human", "scanner", "bot", "self")


def upgrade() -> None:
    op.create_table(
        "message_stats",
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("campaign_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("variant", sa.String(100), nullable=False, server_default=""),
        sa.Column("sent_at", sa.Float),
        *[
            sa.Column(f"open_{lab}", sa.Integer, nullable=False, server_default="0")
            for lab in OPEN_LABELS
        ],
        *[
            sa.Column(f"click_{lab}", sa.Integer, nullable=False, server_default="0")
            for lab in CLICK_LABELS
        ],
        sa.Column("opened_at", sa.Float),
        sa.Column("first_human_open_at", sa.Float),
        sa.Column("first_human_click_at", sa.Float),
        sa.Column("last_human_at", sa.Float),
        sa.Column("last_event_at", sa.Float),
    )
    op.create_index(
        "ix_message_stats_campaign_last", "message_stats", ["campaign_id", "last_human_at"]
    )
    op.create_index(
        "ix_message_stats_campaign_opened", "message_stats", ["campaign_id", "opened_at"]
    )
    op.create_table(
        "link_stats",
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("campaign_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("human", sa.Integer, nullable=False, server_default="0"),
        sa.Column("other", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "counters",
        sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("dim", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    # Messages created before this revision get their (empty) stats row.
    op.execute(
        "INSERT INTO message_stats (message_id, campaign_id, variant, sent_at) "
        "SELECT id, COALESCE(campaign_id, 0), COALESCE(variant, ''), sent_at FROM messages"
    )


def downgrade() -> None:
    for table in ("counters", "link_stats", "message_stats"):
        op.drop_table(table)
