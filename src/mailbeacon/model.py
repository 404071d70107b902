"""Plain data the rest of mailbeacon passes around: no I/O here.

An :class:`Event` is one hit on a pixel or a tracked link, built on the hot
path and stored append-only. Labels are the classifier's verdicts; their
string values are a public interface (API, exports, webhooks).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(enum.StrEnum):
    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"  # a reply, auto-reply or bounce found in a watched mailbox
    REMINDER = "reminder"  # a reminder that fired (the condition still held)


class OpenLabel(enum.StrEnum):
    HUMAN_DIRECT = "human_direct"
    HUMAN_VIA_PROXY = "human_via_proxy"
    MACHINE_PREFETCH = "machine_prefetch"
    SECURITY_SCANNER = "security_scanner"
    BOT_OTHER = "bot_other"
    SELF = "self"


class ClickLabel(enum.StrEnum):
    HUMAN = "human"
    SCANNER = "scanner"
    BOT = "bot"
    SELF = "self"


class ReplyLabel(enum.StrEnum):
    HUMAN = "human"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


class Unrecorded(enum.StrEnum):
    """Why a hit was answered ``X-Mailbeacon-Recorded: no; reason=<this>``;
    for valid hits also the ``reason`` label of ``mailbeacon_unrecorded_hits_total``."""

    QUEUE_FULL = "queue_full"
    STORE_DOWN = "store_down"
    COMMIT_TIMEOUT = "commit_timeout"
    DEAD_LETTER = "dead_letter"
    OPTED_OUT = "opted_out"
    SHUTTING_DOWN = "shutting_down"
    BAD_TOKEN = "bad_token"  # not a valid hit (counted in mailbeacon_rejected_tokens)
    BAD_REQUEST = "bad_request"  # not a valid hit


# What each reason means for the hit (docs/api.md is generated from this).
UNRECORDED_HELP = {
    Unrecorded.QUEUE_FULL: "the writer already holds `queue_max` hits; nothing is kept",
    Unrecorded.STORE_DOWN: "the database is down; the hit is kept in memory and written "
    "when it is back (unless the node stops first)",
    Unrecorded.COMMIT_TIMEOUT: "not committed within `commit_timeout`; it is still written "
    "when the commit lands",
    Unrecorded.DEAD_LETTER: "the database refused its data; it is kept in the "
    "`dead_letters` table but counted nowhere (docs/deployment.md)",
    Unrecorded.OPTED_OUT: "the recipient opted out or was erased; nothing is stored",
    Unrecorded.SHUTTING_DOWN: "the node is stopping; nothing is kept",
    Unrecorded.BAD_TOKEN: "the token does not verify; nothing is stored",
    Unrecorded.BAD_REQUEST: "wrong method, a body, or a path or headers too long",
}


class LabelClass(enum.StrEnum):
    """What kind of reader a label means, for counting and badges: open and
    click labels of one kind share a class (``security_scanner`` and
    ``scanner`` are both a scanner)."""

    HUMAN = "human"
    MACHINE = "machine"
    SCANNER = "scanner"
    BOT = "bot"
    SELF = "self"


OPEN_LABELS = tuple(label.value for label in OpenLabel)
CLICK_LABELS = tuple(label.value for label in ClickLabel)
LABEL_CLASS: dict[str, LabelClass] = {
    OpenLabel.HUMAN_DIRECT: LabelClass.HUMAN,
    OpenLabel.HUMAN_VIA_PROXY: LabelClass.HUMAN,
    OpenLabel.MACHINE_PREFETCH: LabelClass.MACHINE,
    OpenLabel.SECURITY_SCANNER: LabelClass.SCANNER,
    OpenLabel.BOT_OTHER: LabelClass.BOT,
    OpenLabel.SELF: LabelClass.SELF,
    ClickLabel.HUMAN: LabelClass.HUMAN,
    ClickLabel.SCANNER: LabelClass.SCANNER,
    ClickLabel.BOT: LabelClass.BOT,
    ClickLabel.SELF: LabelClass.SELF,
}
HUMAN_OPEN_LABELS = frozenset({OpenLabel.HUMAN_DIRECT.value, OpenLabel.HUMAN_VIA_PROXY.value})
HUMAN_LABELS = frozenset(k for k, c in LABEL_CLASS.items() if c is LabelClass.HUMAN)
# A person's own client or browser fetched it (not a proxy): what a country,
# an OS and a device can be read from.
DIRECT_LABELS = frozenset({OpenLabel.HUMAN_DIRECT.value, ClickLabel.HUMAN.value})

# Request headers the classifier reads; everything else is dropped on the hot
# path so an event stays small (a few hundred bytes).
CLASSIFIER_HEADERS = (
    "accept",
    "accept-language",
    "referer",
    "sec-ch-ua",
    "sec-fetch-mode",
    "x-request-id",
    "via",
)

# Characters of a User-Agent the classifier reads; longer ones are cut on the
# hot path. The stored value is bounded by its column (store.events.fit).
MAX_USER_AGENT = 512


@dataclass(slots=True)
class Event:
    """One tracking hit, as the hot path saw it.

    ``ip`` is the full client address and lives only in memory (for the
    classifier); what is stored is ``ip_stored`` (a truncated network unless
    full addresses were opted in to) and ``ip_hash`` (keyed, so the same
    reader can be recognised without keeping the address).
    """

    message_id: int
    kind: Kind
    at: float  # unix seconds
    method: str
    ip: str
    user_agent: str
    headers: dict[str, str] = field(default_factory=dict)
    link_position: int | None = None
    url: str | None = None
    ip_stored: str = ""
    ip_hash: str = ""
    token_flags: tuple[str, ...] = ()  # e.g. ("mutated",) when the token was repaired
    label: str | None = None
    reasons: list[str] = field(default_factory=list)
    confidence: float | None = None
    client: str | None = None
    os: str | None = None
    device: str | None = None
    country: str | None = None
    id: int | None = None  # set once stored


@dataclass(slots=True)
class MessageInfo:
    """What the hot path and the classifier know of a message, kept in memory."""

    id: int
    campaign_id: int | None
    sent_at: float | None
    created_at: float
    link_count: int = 0
    honeypot_position: int | None = None
