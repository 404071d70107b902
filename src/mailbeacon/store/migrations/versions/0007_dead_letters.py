"""Dead letters: hits the store refused for their data, kept instead of retried forever.

Revision ID: 0007_dead_letters
Revises: 0006_no_reuse
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_dead_letters"
down_revision = "0006_no_reuse"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dead_letters_message", "dead_letters", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_message", "dead_letters")
    op.drop_table("dead_letters")
