"""Initial schema: keys, campaigns, messages, links, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("retired_at", sa.Float),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("campaign_id", sa.BigInteger, sa.ForeignKey("campaigns.id", ondelete="SET NULL")),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("variant", sa.String(100)),
        sa.Column("sent_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("honeypot_position", sa.Integer),
    )
    op.create_index("ix_messages_campaign", "messages", ["campaign_id"])
    op.create_index("ix_messages_recipient", "messages", ["recipient"])
    op.create_table(
        "links",
        sa.Column(
            "message_id",
            sa.BigInteger,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("url", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(32), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("link_position", sa.Integer),
        sa.Column("url", sa.Text),
        sa.Column("flags", sa.String(64), nullable=False, server_default=""),
        sa.Column("label", sa.String(24)),
        sa.Column("reasons", sa.Text),
        sa.Column("confidence", sa.Float),
        sa.Column("client", sa.String(64)),
        sa.Column("os", sa.String(64)),
        sa.Column("device", sa.String(64)),
        sa.Column("country", sa.String(2)),
    )
    op.create_index("ix_events_message", "events", ["message_id", "id"])
    op.create_index("ix_events_at", "events", ["at"])


def downgrade() -> None:
    for table in (
        "events",
        "links",
        "messages",
        "campaigns",
        "api_keys",
        "signing_keys",
        "settings",
    ):
        op.drop_table(table)
