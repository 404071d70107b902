"""Erase by address in any case, and find a message's deliveries.

``recipient erase`` matches ``lower(recipient) = lower(:address)``; an index
on that expression (PostgreSQL and SQLite >= 3.9 both index expressions)
replaces the plain one, which nothing else reads. Erase and opt-out also
reach the outbox by ``message_id``, which had no index: without one each
erase scanned every delivery ever made.

Revision ID: 0008_privacy_erase
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_privacy_erase"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_recipient", table_name="messages")
    op.create_index("ix_messages_recipient_lower", "messages", [sa.text("lower(recipient)")])
    op.create_index("ix_outbox_message", "outbox", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message", table_name="outbox")
    op.drop_index("ix_messages_recipient_lower", table_name="messages")
    op.create_index("ix_messages_recipient", "messages", ["recipient"])
