"""Privacy: recipients who opted out of tracking.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Addresses are stored lowercased: the hot path compares the message's
    # recipient lowercased, so "Ana@Example.com" and "ana@example.com" match.
    op.create_table(
        "optouts",
        sa.Column("recipient", sa.String(320), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("optouts")
