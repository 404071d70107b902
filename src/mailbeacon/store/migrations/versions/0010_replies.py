"""Replies: watched mailboxes, reminders, and the reply counters of a message.

Revision ID: 0010_replies
Revises: 0009_relay
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_replies"
down_revision = "0009_relay"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Replies are matched by their From in any case: ix_messages_recipient_lower
    # (0008_privacy_erase) serves that lookup too.
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("imap_url", sa.Text, nullable=False),
        sa.Column("imap_secret", sa.Text),
        sa.Column("folder", sa.String(200), nullable=False, server_default="INBOX"),
        sa.Column("state", sa.String(10), nullable=False, server_default="new"),
        sa.Column("last_check_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_at", sa.Float),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "reminders",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "message_id",
            sa.BigInteger,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("condition", sa.String(12), nullable=False),
        sa.Column("after", sa.String(40), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("reason", sa.String(40)),
        sa.Column("event_id", sa.BigInteger),
        sa.Column("default_of", sa.String(320)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("done_at", sa.Float),
        sa.UniqueConstraint("message_id", "default_of", name="uq_reminders_default"),
    )
    op.create_index("ix_reminders_due", "reminders", ["state", "due_at"])
    op.create_index("ix_reminders_message", "reminders", ["message_id"])
    op.create_table(
        "reminder_defaults",
        sa.Column("sender", sa.String(320), primary_key=True),
        sa.Column("condition", sa.String(12), nullable=False),
        sa.Column("after", sa.String(40), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("message_stats") as batch:
        batch.add_column(sa.Column("replied_at", sa.Float))
        batch.add_column(sa.Column("replies", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("auto_replies", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("bounced", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("message_stats") as batch:
        for col in ("bounced", "auto_replies", "replies", "replied_at"):
            batch.drop_column(col)
    op.drop_table("reminder_defaults")
    op.drop_index("ix_reminders_message", "reminders")
    op.drop_index("ix_reminders_due", "reminders")
    op.drop_table("reminders")
    op.drop_table("mailboxes")
