"""The relay: senders, the outgoing queue, and messages.message_id_header.

Revision ID: 0009_relay
Revises: 0008_privacy_erase
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_relay"
down_revision = "0007_dead_letters"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("message_id_header", sa.String(998)))
    op.create_index("ix_messages_message_id_header", "messages", ["message_id_header"])
    op.create_table(
        "senders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("upstream", sa.Text, nullable=False),
        sa.Column("upstream_secret", sa.Text),
        sa.Column("track", sa.String(8), nullable=False, server_default="opens"),
        sa.Column("also", sa.Text, nullable=False, server_default=""),
        sa.Column("rate_per_hour", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float),
    )
    op.create_table(
        "relay_submissions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "sender_id",
            sa.Integer,
            sa.ForeignKey("senders.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("mail_from", sa.String(320), nullable=False),
        sa.Column("mail_options", sa.String(200), nullable=False, server_default=""),
        sa.Column("track", sa.String(8), nullable=False),
        sa.Column("message_id_header", sa.String(998)),
        sa.Column("headers", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.LargeBinary),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "relay_copies",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "submission_id",
            sa.BigInteger,
            sa.ForeignKey("relay_submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sender_id", sa.Integer, nullable=False),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_at", sa.Float),
        sa.Column("locked_until", sa.Float),
        sa.Column("sent_at", sa.Float),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_relay_copies_due", "relay_copies", ["status", "next_at"])
    op.create_index("ix_relay_copies_sender", "relay_copies", ["sender_id", "created_at"])
    op.create_index("ix_relay_copies_submission", "relay_copies", ["submission_id"])


def downgrade() -> None:
    for table in ("relay_copies", "relay_submissions", "senders"):
        op.drop_table(table)
    op.drop_index("ix_messages_message_id_header", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("message_id_header")
