"""Which tracked message a mail answers. Pure: the lookups are handed in.

In order of confidence:
1. Thread: a Message-ID in In-Reply-To or References (nearest ancestor
   first) is a tracked message's ``message_id_header``. Whoever writes
   (the recipient, or a colleague it was forwarded to) answered that
   message. The relay sends one copy per recipient with the same
   Message-ID, so the writer's address (a reply) or the failed recipient
   (a bounce) picks the copy.
2. A bounce without a thread: its failed recipient's latest message in
   the last 30 days.
3. Fallback, low confidence: a mail from a message's recipient whose
   subject is "Re: <that subject>", within 30 days of sending (webmail
   that drops In-Reply-To). Labelled ``fallback:subject``.
A mail from the same person that fits none of these (another subject, no
thread) is not a reply to anything we track.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mailbeacon.store.mailboxes import Tracked

WINDOW = 30 * 86400.0  # the fallback and recipient-only bounces look this far back
_ID = re.compile(r"<[^<>\s]+>")
# Reply prefixes mail clients write, in the languages Outlook, Gmail and
# Thunderbird use: Re, Aw (de), Sv (sv/da/no), Antw (nl), Vs (fi), Rif (it),
# Odp (pl), Ynt (tr), 回复/答复 (zh). Forwards (Fwd/Wg/Tr) are not replies.
_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|antw|vs|rif|odp|ynt|回复|答复|返信)\s*(?:\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reply:
    """What matching needs of one mail, from its header fields."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: str  # the From address, lowercased
    subject: str
    at: float
    failed: tuple[str, ...] = ()  # a bounce's failed recipients
    returned_ids: tuple[str, ...] = ()  # a DSN's returned Message-ID

    @property
    def thread(self) -> list[str]:
        """Message-IDs this mail names, the most direct first."""
        seen: list[str] = []
        for mid in (*self.returned_ids, *self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return seen


@dataclass(frozen=True)
class Match:
    message_id: int
    reasons: list[str] = field(default_factory=list)
    confidence: float = 1.0


def ids(value: str) -> tuple[str, ...]:
    """The <message-ids> in a header value, normalised."""
    return tuple(norm(m) for m in _ID.findall(value or ""))


def norm(message_id: str) -> str:
    """``<id>`` whatever form it was stored or written in (ids are case-sensitive)."""
    return "<" + message_id.strip().strip("<>").strip() + ">"


def reply_hash(reply: Reply) -> str:
    """What tells one reply from another: its Message-ID, else who/when/what.
    Stored instead of the Message-ID itself (it names the replier's host)."""
    key = reply.message_id or f"{reply.sender}|{reply.at}|{reply.subject}"
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def base_subject(subject: str) -> tuple[str, bool]:
    """The subject without reply prefixes, folded; and whether it had one."""
    s, replied = subject or "", False
    while True:
        cut = _PREFIX.sub("", s, count=1)
        if cut == s:
            break
        s, replied = cut, True
    return " ".join(s.split()).casefold(), replied


def pick_copy(copies: Sequence[Tracked], address: str) -> tuple[Tracked, str]:
    """The copy sent to ``address``, else the only one, else one to its domain,
    else the first; with the reason saying which rule chose it."""
    for t in copies:
        if t.recipient == address:
            return t, "copy:recipient"
    if len(copies) == 1:
        return copies[0], "copy:only"
    domain = address.rpartition("@")[2]
    for t in copies:
        if domain and t.recipient.rpartition("@")[2] == domain:
            return t, "copy:same_domain"
    return copies[0], "copy:first"


def match(
    reply: Reply,
    by_header: Mapping[str, Sequence[Tracked]],
    by_recipient: Mapping[str, Sequence[Tracked]],
) -> Match | None:
    """The tracked message ``reply`` answers, or None."""
    for mid in reply.thread:
        copies = by_header.get(mid)
        if not copies:
            continue
        how = _how(reply, mid)
        if reply.failed:
            chosen, rule = pick_copy(copies, reply.failed[0])
            for address in reply.failed:  # the first failed address we sent to
                if any(t.recipient == address for t in copies):
                    chosen, rule = pick_copy(copies, address)
                    break
            return Match(chosen.id, [how, rule])
        chosen, rule = pick_copy(copies, reply.sender)
        reasons = [how]
        if chosen.recipient != reply.sender:
            reasons.append("from:other_address")  # a colleague it was forwarded to
        if len(copies) > 1:
            reasons.append(rule)
        return Match(chosen.id, reasons)
    if reply.failed:
        return _bounce_by_recipient(reply, by_recipient)
    return _fallback(reply, by_recipient)


def _how(reply: Reply, mid: str) -> str:
    if mid in reply.returned_ids:
        return "thread:returned_message"
    if mid in reply.in_reply_to:
        return "thread:in_reply_to"
    return "thread:references"


def _latest(candidates: Iterable[Tracked], at: float) -> Tracked | None:
    best: Tracked | None = None
    for t in candidates:
        sent = t.sent_at
        if sent is None or not (sent - 60 <= at <= sent + WINDOW):  # 60 s of clock skew
            continue
        if best is None or (best.sent_at or 0) < sent:
            best = t
    return best


def _bounce_by_recipient(
    reply: Reply, by_recipient: Mapping[str, Sequence[Tracked]]
) -> Match | None:
    for address in reply.failed:
        found = _latest(by_recipient.get(address, ()), reply.at)
        if found is not None:
            return Match(found.id, ["bounce:recipient_latest"], 0.6)
    return None


def _fallback(reply: Reply, by_recipient: Mapping[str, Sequence[Tracked]]) -> Match | None:
    subject, replied = base_subject(reply.subject)
    if not replied or not subject:
        return None
    same = [
        t for t in by_recipient.get(reply.sender, ()) if base_subject(t.subject or "")[0] == subject
    ]
    found = _latest(same, reply.at)
    if found is None:
        return None
    return Match(found.id, ["fallback:subject", "fallback:same_recipient"], 0.5)
