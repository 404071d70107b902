"""The one schema, for SQLite and PostgreSQL (SQLAlchemy Core).

Events are append-only facts; label columns are the classifier's current
verdict and may be rewritten by late evidence or ``mailbeacon reclassify``.
``events.message_id`` has no foreign key on purpose: the hot insert must never
fail a whole group commit because one message was erased meanwhile.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; BIGINT would not.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(128), nullable=False),  # hex
    Column("created_at", Float, nullable=False),
    Column("retired_at", Float),  # retired keys stop verifying
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in lists, e.g. "mb_3kQ9"
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="SET NULL")),
    Column("recipient", String(320), nullable=False),
    Column("subject", Text),
    Column("variant", String(100)),
    Column("sent_at", Float),
    Column("created_at", Float, nullable=False),
    Column("honeypot_position", Integer),
    Index("ix_messages_campaign", "campaign_id"),
    Index("ix_messages_recipient", "recipient"),
)

links = Table(
    "links",
    metadata,
    Column(
        "message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("url", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("message_id", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("at", Float, nullable=False),
    Column("method", String(8), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("ip_hash", String(32), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("headers", Text, nullable=False),  # JSON object of the classifier's headers
    Column("link_position", Integer),
    Column("url", Text),
    Column("flags", String(64), nullable=False, server_default=""),
    Column("label", String(24)),
    Column("reasons", Text),  # JSON list of reason codes
    Column("confidence", Float),
    Column("client", String(64)),
    Column("os", String(64)),
    Column("device", String(64)),
    Column("country", String(2)),
    Index("ix_events_message", "message_id", "id"),
    Index("ix_events_at", "at"),
)

# Each list is kept as the official file it came from (re-parsed on start),
# so nothing is lost to our parsing and a newer parser can read it again.
network_lists = Table(
    "network_lists",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("scope", String(8), nullable=False),
    Column("format", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_at", Float, nullable=False),
    Column("ranges", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("content", Text, nullable=False),
)

__all__ = [
    "network_lists",
    "metadata",
    "settings",
    "signing_keys",
    "api_keys",
    "campaigns",
    "messages",
    "links",
    "events",
    "UniqueConstraint",
]
