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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from mailbeacon import model as _model

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; BIGINT would not.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Ids of campaigns, messages and events are never handed out twice (an
# erased message's id on someone else's message would collect the erased
# person's hits): SQLite's AUTOINCREMENT (sqlite_autoincrement, migration
# 0006); PostgreSQL sequences never reuse a value anyway.

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
    # Archived campaigns (0012) leave the lists unless asked for; nothing else changes.
    Column("archived_at", Float),
    sqlite_autoincrement=True,
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
    # The copy's Message-ID header as sent (the relay, 0009): replies name it
    # in In-Reply-To / References. 998: RFC 5322's longest line.
    Column("message_id_header", String(998)),
    Index("ix_messages_campaign", "campaign_id"),
    Index("ix_messages_message_id_header", "message_id_header"),
    sqlite_autoincrement=True,
)
# Erase and export find a person's messages by lower(recipient) (store/privacy.py);
# replies are matched by their From address this way too (0010).
Index("ix_messages_recipient_lower", func.lower(messages.c.recipient))

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
    # Seconds a streamed pixel stayed open (0011; docs/read-time.md): set once
    # when its connection ends; NULL when not measured.
    Column("read_seconds", Float),
    Index("ix_events_message", "message_id", "id"),
    Index("ix_events_at", "at"),
    sqlite_autoincrement=True,
)

# Recipients who asked not to be tracked (lowercased address): their pixel
# is still served, nothing is stored (store.messages.message_info).
optouts = Table(
    "optouts",
    metadata,
    Column("recipient", String(320), primary_key=True),
    Column("created_at", Float, nullable=False),
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

# One column per label (model.py holds the vocabulary).
OPEN_LABELS = _model.OPEN_LABELS
CLICK_LABELS = _model.CLICK_LABELS

# Rollups (see mailbeacon/store/rollups.py): one row per message with a counter per
# label, so "unique" numbers are exact transitions, never a scan of events.
message_stats = Table(
    "message_stats",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("campaign_id", BigInteger, nullable=False, server_default="0"),
    Column("variant", String(100), nullable=False, server_default=""),
    Column("sent_at", Float),
    *[Column(f"open_{lab}", Integer, nullable=False, server_default="0") for lab in OPEN_LABELS],
    *[Column(f"click_{lab}", Integer, nullable=False, server_default="0") for lab in CLICK_LABELS],
    Column("opened_at", Float),  # first human open, or first human click (an implied open)
    Column("first_human_open_at", Float),
    Column("first_human_click_at", Float),
    Column("last_human_at", Float),
    Column("last_event_at", Float),
    # Replies (0010): first human reply, human replies, auto-replies, bounces.
    Column("replied_at", Float),
    Column("replies", Integer, nullable=False, server_default="0"),
    Column("auto_replies", Integer, nullable=False, server_default="0"),
    Column("bounced", Integer, nullable=False, server_default="0"),
    # Read time (0011): when an open of this message was first measured as "read".
    Column("read_at", Float),
    # The message's created_at (0012), so "last activity" (the last human
    # hit, else creation) is one expression over this table, indexed below.
    Column("created_at", Float),
    Index("ix_message_stats_campaign_last", "campaign_id", "last_human_at"),
    Index("ix_message_stats_campaign_opened", "campaign_id", "opened_at"),
)
# The message list (reports/messages.py) pages in this order: newest
# activity first, with and without a campaign filter (migration 0012).
_ACTIVITY = func.coalesce(message_stats.c.last_human_at, message_stats.c.created_at)
Index("ix_message_stats_activity", _ACTIVITY, message_stats.c.message_id)
Index(
    "ix_message_stats_campaign_activity",
    message_stats.c.campaign_id,
    _ACTIVITY,
    message_stats.c.message_id,
)

link_stats = Table(
    "link_stats",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("campaign_id", BigInteger, nullable=False, server_default="0"),
    Column("human", Integer, nullable=False, server_default="0"),
    Column("other", Integer, nullable=False, server_default="0"),
)

# Additive counters: (campaign, dimension, key) -> n. Campaign 0 holds
# messages that belong to no campaign. Dimensions and keys: rollups.py.
counters = Table(
    "counters",
    metadata,
    Column("campaign_id", BigInteger, primary_key=True, autoincrement=False),
    Column("dim", String(16), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

__all__ = [
    "message_stats",
    "link_stats",
    "counters",
    "network_lists",
    "optouts",
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

# --- the sender's view (migration 0005): people, sessions, webhooks, outbox ---

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lowercased
    Column("password_hash", String(200), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("created_at", Float, nullable=False),
    Column("last_login_at", Float),
)

# The cookie holds a random token; only its SHA-256 is stored, so a leaked
# database cannot be replayed as logins.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("key", String(400), nullable=False),  # "<email>|<ip>"
    Column("at", Float, nullable=False),
    Index("ix_login_failures_key_at", "key", "at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # comma-separated event types
    Column("secret", String(100), nullable=False),  # needed in clear to sign
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float),
)

# One row per notification to deliver (a webhook POST or an email), written
# in the same transaction as the event that caused it: the durable outbox.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("channel", String(8), nullable=False),  # "webhook" | "email"
    Column("webhook_id", Integer),
    Column("target", Text),  # email address for the email channel
    Column("event_type", String(32), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("locked_until", Float),
    Column("payload", Text),  # built at the first attempt, then sent unchanged
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", Float),
    Column("replay_of", BigInteger),
    Index("ix_outbox_due", "status", "next_at"),
    Index("ix_outbox_webhook", "webhook_id", "id"),
    Index("ix_outbox_message", "message_id"),  # erase and opt-out (migration 0008)
)

# --- the relay (migration 0009): senders and the outgoing queue ---------------

# An account that submits mail over SMTP. The upstream URL is kept without
# its password; the password is sealed with the secret key (secretbox.py).
senders = Table(
    "senders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lowercased; the SMTP login
    Column("password_hash", String(200), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("upstream", Text, nullable=False),  # smtp[s]://user@host:port[?tls=none]
    Column("upstream_secret", Text),  # the upstream password, sealed; NULL: no AUTH
    Column("track", String(8), nullable=False, server_default="opens"),
    Column("also", Text, nullable=False, server_default=""),  # more From addresses, comma-separated
    Column("rate_per_hour", Integer),  # copies per hour; NULL: the relay_rate_per_hour setting
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float),
)

# A submitted message, stored once however many recipients it has: each
# copy is regenerated from ``data`` at send time (tokens are deterministic).
# ``data`` is dropped once no copy needs it; ``headers`` stay for the DSN.
relay_submissions = Table(
    "relay_submissions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("sender_id", Integer, ForeignKey("senders.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # "mail" | "dsn"
    Column("mail_from", String(320), nullable=False),
    Column("mail_options", String(200), nullable=False, server_default=""),
    Column("track", String(8), nullable=False),
    Column("message_id_header", String(998)),
    Column("headers", LargeBinary, nullable=False),
    Column("data", LargeBinary),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per copy (one recipient of one submission): its state in the queue.
relay_copies = Table(
    "relay_copies",
    metadata,
    Column("id", BigId, primary_key=True),
    Column(
        "submission_id",
        BigInteger,
        ForeignKey("relay_submissions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sender_id", Integer, nullable=False),
    Column("message_id", BigInteger),  # messages.id; NULL for a DSN
    Column("recipient", String(320), nullable=False),
    Column("status", String(10), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("next_at", Float),
    Column("locked_until", Float),
    Column("sent_at", Float),
    Column("last_code", Integer),
    Column("last_error", Text),
    Index("ix_relay_copies_due", "status", "next_at"),
    Index("ix_relay_copies_sender", "sender_id", "created_at"),
    Index("ix_relay_copies_submission", "submission_id"),
)

# --- replies (migration 0010): watched mailboxes and reminders -----------------

# A sender's IMAP inbox, watched read-only for replies (mailboxes/). The URL
# is kept without its password; the password is sealed (secretbox.py). One
# node at a time watches a mailbox: the one holding its lease.
mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lowercased
    Column("imap_url", Text, nullable=False),  # imap[s]://user@host:port[?tls=none]
    Column("imap_secret", Text),  # the IMAP password, sealed
    Column("folder", String(200), nullable=False, server_default="INBOX"),
    Column("state", String(10), nullable=False, server_default="new"),  # new | ok | failing
    Column("last_check_at", Float),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, server_default="0"),  # in a row
    Column("next_try_at", Float),  # while failing: no node connects before this
    Column("uidvalidity", BigInteger),
    Column("last_uid", BigInteger),  # every UID up to this one has been looked at
    Column("lease_owner", String(100)),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One nudge for one message: fires once at ``due_at`` unless the event it
# waits for (open, click, human reply) came first. ``default_of`` names the
# per-sender default it was made from (unique per message: made only once).
reminders = Table(
    "reminders",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("condition", String(12), nullable=False),  # not_opened | not_clicked | not_replied
    Column("after", String(40), nullable=False),  # as given: "3d", "2 business days"
    Column("tz", String(64), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("state", String(10), nullable=False, server_default="pending"),  # fired | cancelled
    Column("reason", String(40)),  # why it was cancelled: opened, clicked, replied, by_user
    Column("event_id", BigInteger),  # the reminder event it fired as
    Column("default_of", String(320)),
    Column("created_at", Float, nullable=False),
    Column("done_at", Float),
    UniqueConstraint("message_id", "default_of", name="uq_reminders_default"),
    Index("ix_reminders_due", "state", "due_at"),
    Index("ix_reminders_message", "message_id"),
)

# A sender's standing reminder: every message they send gets one. ``sender``
# is a relay sender's address, or "*" for every tracked message.
reminder_defaults = Table(
    "reminder_defaults",
    metadata,
    Column("sender", String(320), primary_key=True),
    Column("condition", String(12), nullable=False),
    Column("after", String(40), nullable=False),
    Column("tz", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

# Hits the store refused for their *data* (migration 0007): the writer splits
# a failing batch until the row at fault is alone and keeps it here with the
# error, so one bad row never stops recording. ``payload`` is the event as it
# would have been stored (ASCII JSON; never the full client address).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", Float, nullable=False),  # when it was refused
    Column("message_id", BigInteger),  # NULL if not even the id fits
    Column("payload", Text, nullable=False),
    Column("error", Text, nullable=False),
    Index("ix_dead_letters_message", "message_id"),
    sqlite_autoincrement=True,
)
