"""One look at a mailbox: find the new answers, record them, move the checkpoint.

- First look (or the server renumbered the folder: a new UIDVALIDITY):
  server-side SEARCH for mail since the oldest tracked message in the
  backfill window that names a tracked Message-ID, comes from a tracked
  recipient, or is a bounce; only those headers are fetched.
- After that: the headers of the UIDs above the checkpoint (new mail),
  or the same SEARCH limited to that UID range when many arrived at once.

An answer is recorded once per message: the reply's Message-ID hash is
checked against the replies already stored (and those handed to the
recorder by this process but maybe not yet committed), so a reconnect or
a second look never records it twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import Engine

from mailbeacon.mailboxes import classify as cls
from mailbeacon.mailboxes.imap import Fetched, Folder, Session, or_all
from mailbeacon.mailboxes.match import WINDOW, Match, Reply, ids, match, norm, reply_hash
from mailbeacon.model import Event, Kind, ReplyLabel
from mailbeacon.store import mailboxes as store
from mailbeacon.store.mailboxes import Mailbox, Tracked

log = logging.getLogger("mailbeacon.mailboxes")

# Above this many new UIDs, search the range instead of fetching every header.
SEARCH_ABOVE = 500
# Criteria per SEARCH: 500 are ~25 KB of command line, under Dovecot's
# 64 KB imap_max_line_length; each SEARCH is one pass over the mailbox, so
# fewer, longer ones are faster (bench/replies.py).
SEARCH_CHUNK = 500
DAEMONS = ("mailer-daemon", "postmaster")
# Above this many Message-ID hosts, search for each Message-ID instead.
MAX_HOSTS = 50
# A first look searches mail from each tracked recipient (for the subject
# fallback) only up to this many recipients: each is one more pass over the
# mailbox. New mail is always checked against the fallback.
FALLBACK_RECIPIENTS = 100


class LeaseLost(Exception):
    """Another node took the mailbox over: stop watching it here."""


class NotRecorded(Exception):
    """The store did not take an event: keep the checkpoint, look again later."""


@dataclass
class Context:
    engine: Engine
    box: Mailbox
    owner: str
    add: Callable[[Event], bool]  # blocking: True once committed
    backfill_days: int = 30
    own: frozenset[str] = frozenset()  # the sender's own addresses: never a reply
    clock: Callable[[], float] = time.time
    handed: set[tuple[int, str]] = field(default_factory=set)
    recorded: int = 0


def check(ctx: Context, session: Session, folder: Folder, last_uid: int | None) -> int:
    """Look at everything after ``last_uid`` (None: a first look); return the
    new checkpoint, already stored."""
    top = folder.uidnext - 1
    if last_uid is None:
        uids = backfill_uids(ctx, session, None, top)
    else:
        uids = session.uids_after(last_uid)
        if len(uids) > SEARCH_ABOVE:
            uids = backfill_uids(ctx, session, last_uid, top)
        top = max([top, *uids]) if uids else max(top, last_uid)
    for i in range(0, len(uids), 200):
        chunk = uids[i : i + 200]
        process(ctx, session, session.headers(chunk))
        _checkpoint(ctx, folder, chunk[-1] if i + 200 < len(uids) else top)
    if not uids:
        _checkpoint(ctx, folder, top)
    return top


def _checkpoint(ctx: Context, folder: Folder, uid: int) -> None:
    if not store.checked(
        ctx.engine, ctx.box.id, ctx.owner, uidvalidity=folder.uidvalidity, last_uid=uid,
        now=ctx.clock(),
    ):  # fmt: skip
        raise LeaseLost(ctx.box.email)


def backfill_uids(ctx: Context, session: Session, after: int | None, top: int) -> list[int]:
    """UIDs that may answer a tracked message, found by the server's SEARCH."""
    since = ctx.clock() - ctx.backfill_days * 86400.0
    with ctx.engine.connect() as conn:
        tracked = store.sent_since(conn, since)
    if not tracked:
        return []
    oldest = min(t.sent_at or since for t in tracked)
    scope: list[Any] = ["SINCE", (datetime.fromtimestamp(oldest, UTC) - timedelta(days=1)).date()]
    if after is not None:
        scope = ["UID", f"{after + 1}:{max(top, after + 1)}", *scope]
    wanted = thread_criteria(sorted({norm(t.message_id_header) for t in tracked
                                     if t.message_id_header}))  # fmt: skip
    recipients = sorted({t.recipient for t in tracked})
    if len(recipients) <= FALLBACK_RECIPIENTS:
        wanted += [["FROM", r] for r in recipients]
    # Bounces: a report, an Exim failure list, or mail from a mailer daemon.
    wanted += [
        ["HEADER", "Content-Type", "delivery-status"],
        ["HEADER", "X-Failed-Recipients", ""],
        *(["FROM", d] for d in DAEMONS),
    ]
    found: set[int] = set()
    for i in range(0, len(wanted), SEARCH_CHUNK):
        found.update(session.search([*scope, *or_all(wanted[i : i + SEARCH_CHUNK])]))
    return sorted(u for u in found if after is None or u > after)


def thread_criteria(mids: list[str]) -> list[list[Any]]:
    """SEARCH criteria that find every mail naming one of ``mids``.

    Dovecot evaluates each criterion against every message's header (no
    index for arbitrary headers), so 2,000 exact criteria for 1,000 tracked
    messages cost 2,000 passes' worth of work. A sender's Message-IDs share
    a few right-hand sides (their mail client's or the relay's host): one
    substring per host finds the same replies and a few more (replies to
    untracked mail from that host), which matching then drops
    (bench/replies.py: 50k messages, 1,000 tracked)."""
    hosts: dict[str, list[str]] = defaultdict(list)
    exact: list[str] = []
    for mid in mids:
        local, at, host = mid[1:-1].rpartition("@")
        if at and local and host:
            hosts[host.lower()].append(mid)
        else:
            exact.append(mid)
    if len(hosts) > MAX_HOSTS:
        exact, hosts = mids, {}
    keys = [f"@{h}>" for h in sorted(hosts)] + exact
    return [["HEADER", name, k] for k in keys for name in ("In-Reply-To", "References")]


def process(ctx: Context, session: Session, fetched: Sequence[Fetched]) -> int:
    """Classify, match and record ``fetched``; returns how many were recorded."""
    parsed: list[tuple[Reply, cls.Verdict]] = []
    for f in fetched:
        msg = cls.parse_headers(f.header)
        sender = (cls.addresses(msg, "From") or [""])[0]
        if sender in ctx.own:
            continue  # the sender's own mail (a copy to self, a CC)
        status: list[cls.Recipient] | None = None
        returned: tuple[str, ...] = ()
        if cls.is_dsn(msg):
            raw_status, raw_returned = session.report_parts(f.uid)
            status = cls.parse_status(raw_status) if raw_status else None
            if raw_returned:
                returned = ids(cls.header(cls.parse_headers(raw_returned), "Message-ID"))
        verdict = cls.classify(msg, status)
        parsed.append((_reply(msg, f, sender, verdict, returned, ctx.clock), verdict))
    if not parsed:
        return 0
    by_header, by_recipient = _lookups(ctx.engine, [r for r, _ in parsed])
    found: list[tuple[Reply, cls.Verdict, Match]] = []
    for reply, verdict in parsed:
        m = match(reply, by_header, by_recipient)
        if m is not None:
            found.append((reply, verdict, m))
    if not found:
        return 0
    with ctx.engine.connect() as conn:
        done = store.recorded_replies(conn, [m.message_id for _, _, m in found]) | ctx.handed
    n = 0
    for reply, verdict, m in found:
        key = (m.message_id, reply_hash(reply))
        if key in done:
            continue
        done.add(key)
        event = Event(
            message_id=m.message_id,
            kind=Kind.REPLY,
            at=reply.at,
            method="IMAP",
            ip="",
            user_agent="",
            headers={"from": reply.sender, "reply_id": key[1]},
            label=verdict.label.value,
            reasons=[*verdict.reasons, *m.reasons],
            confidence=m.confidence,
        )
        ctx.handed.add(key)  # from here on this process never hands it over again
        if not ctx.add(event):
            raise NotRecorded(f"the store did not take the reply to message {m.message_id}")
        n += 1
        log.info(
            "mailbox %s: %s on message %d (%s)",
            ctx.box.email, verdict.label.value, m.message_id, ", ".join(event.reasons),
        )  # fmt: skip
    ctx.recorded += n
    return n


def _reply(
    msg: Message,
    f: Fetched,
    sender: str,
    verdict: cls.Verdict,
    returned: tuple[str, ...],
    clock: Callable[[], float],
) -> Reply:
    mid = ids(cls.header(msg, "Message-ID"))
    return Reply(
        message_id=mid[0] if mid else None,
        in_reply_to=ids(cls.header(msg, "In-Reply-To")),
        references=ids(cls.header(msg, "References")),
        sender=sender,
        subject=cls.header(msg, "Subject"),
        at=f.at if f.at is not None else clock(),
        failed=verdict.failed if verdict.label is ReplyLabel.BOUNCE else (),
        returned_ids=returned,
    )


def _lookups(
    engine: Engine, replies: Iterable[Reply]
) -> tuple[dict[str, list[Tracked]], dict[str, list[Tracked]]]:
    replies = list(replies)
    thread = {mid for r in replies for mid in r.thread}
    people = {r.sender for r in replies} | {a for r in replies for a in r.failed}
    since = min(r.at for r in replies) - WINDOW
    by_header: dict[str, list[Tracked]] = defaultdict(list)
    by_recipient: dict[str, list[Tracked]] = defaultdict(list)
    with engine.connect() as conn:
        # Stored as given: with or without the angle brackets.
        for t in store.by_message_id_header(conn, thread | {m[1:-1] for m in thread}):
            if t.message_id_header:
                by_header[norm(t.message_id_header)].append(t)
        for t in store.by_recipient(conn, people, since):
            by_recipient[t.recipient].append(t)
    return by_header, by_recipient
