"""What happens to a submitted message between the client's DATA and our reply.

1. Clean it once (split.prepare) and check that every From: address belongs
   to the authenticated sender.
2. Create one message per recipient (envelope recipients: To, Cc and Bcc
   alike) with the Message-ID and the links, in one transaction.
3. Hand the copies to the sender's upstream, each made from the submission
   just before it is sent: over up to 4 sessions at once for a message up to
   2 MB, over one (one copy in memory at a time) for a bigger one. The
   envelopes of the small ones go while 2 commits, or even at the client's
   DATA command when it declared a small SIZE (Relay.begin); each body only
   after the commit.
4. Answer. 250 only when every copy is accepted by the upstream, queued
   durably (upstream said "later" after taking another copy), or refused
   for good (a bounce report to the sender is queued). When the upstream
   says "later" before taking any copy, the client hears that 4xx itself
   and sends again; the messages made for it are removed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from mailbeacon.config import Settings
from mailbeacon.messages import check_recipient
from mailbeacon.relay import accounts, dsn, split
from mailbeacon.relay.upstream import Awaited, Once, Pool, Reply, send_all
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.store import outgoing
from mailbeacon.store.senders import Sender
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon.relay")
T = TypeVar("T")

# The client waits for our reply while copies go out. Past this many seconds
# the copies not yet tried are queued instead (clients wait 10 min for the
# reply to DATA, RFC 5321 4.5.3.2.6; we answer well before).
IN_SESSION_SECONDS = 120.0
KEEP_OPTIONS = ("BODY", "SMTPUTF8")  # MAIL FROM parameters passed on; SIZE is recomputed
LANES = 4  # upstream sessions a submission's copies go out on at once (Pool keeps 4 idle)
LANES_MAX_BYTES = 2 * 1024 * 1024  # bigger messages: one copy at a time (memory)
# What a pixel can add to a copy, for a SIZE declared before the copy exists:
# the tag is under 300 characters, at most 1.4x that once base64 or
# quoted-printable, once per HTML part; declared generously, as an estimate
# should be, so a server that holds a message to its SIZE never sees more.
PIXEL_ROOM = 8192
# Submissions whose envelopes wait upstream for the client's message at once
# (Relay.begin), and for how long: a slow client must not hold the lanes'
# threads, nor the upstream's patience (Postfix waits 300 s for a body).
EARLY_AT_ONCE = 2
EARLY_WAIT = 60.0


@dataclass(frozen=True)
class Created:
    message_ids: list[int]
    campaign_id: int | None


@dataclass(frozen=True)
class Early:
    """A submission's envelopes, sent at the client's DATA command: the lanes
    wait for ``copies`` (index -> copy) and answer in ``replies``."""

    copies: Awaited[Callable[[int], bytes]]
    replies: Future[list[Reply | None]]

    def abandon(self) -> None:
        """The message will not come (or goes another way): the sessions
        holding an envelope are closed, so the upstream takes nothing."""
        self.copies.abandon()


def passed_on(options: Sequence[str]) -> list[str]:
    """The client's MAIL FROM parameters each copy's MAIL FROM carries."""
    return [o for o in options if o.split("=", 1)[0].upper() in KEEP_OPTIONS]


def declared_size(options: Sequence[str]) -> int | None:
    """The client's SIZE=n of MAIL FROM (RFC 1870), if it gave one."""
    for o in options:
        name, _, value = o.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None


class Relay:
    """The submission path and the bounce reports; the queue worker shares it."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        signer: Callable[[], Signer],
        base_url: str,
        hostname: str,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.signer = signer
        self.base_url = base_url
        self.hostname = hostname
        # Upstream sessions block (smtplib): their own threads, so a slow
        # upstream never holds the threads the recorder and API use.
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mailbeacon-relay")
        self.upstreams = Pool()  # logged-in upstream sessions, reused for the next message
        # The other lanes of a submission (send_all): a pool of their own, so a
        # submission's thread never waits on work queued behind itself.
        self.lanes = ThreadPoolExecutor(max_workers=16, thread_name_prefix="mailbeacon-lane")
        self.early_slots = threading.BoundedSemaphore(EARLY_AT_ONCE)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # --- one submission ------------------------------------------------------

    def begin(
        self, sender: Sender, mail_from: str, rcpts: Sequence[str], options: Sequence[str]
    ) -> Early | None:
        """At the client's DATA command: each copy's envelope (MAIL, RCPT,
        DATA) goes upstream now, and waits there for its copy while the
        client sends the message, so the upstream's 354 is in before the
        message is (its round trip took 4-5 ms of a 13 ms submission on the
        loaded 2-core bench machine, after the message).

        Only for a client that declared a SIZE small enough for the copies
        to go side by side (mail clients do when offered SIZE), and for
        ``EARLY_AT_ONCE`` submissions at a time; the others send their
        envelopes once the message is in (deliver). No SIZE goes upstream
        then: a copy's size is known only once it is made."""
        size = declared_size(options)
        if size is None or size > LANES_MAX_BYTES or not rcpts:
            return None
        if not self.early_slots.acquire(blocking=False):
            return None
        copies: Awaited[Callable[[int], bytes]] = Awaited(EARLY_WAIT)
        items: list[tuple[str, Callable[[], bytes]]] = [
            (r, functools.partial(lambda i: copies.get()(i), i)) for i, r in enumerate(rcpts)
        ]
        try:
            replies = self.lanes.submit(self._send_early, sender, mail_from, options, items)
        except RuntimeError:  # the node is stopping
            self.early_slots.release()
            return None
        replies.add_done_callback(lambda _: self.early_slots.release())
        return Early(copies, replies)

    def _send_early(
        self, sender: Sender, mail_from: str, options: Sequence[str],
        items: list[tuple[str, Callable[[], bytes]]],
    ) -> list[Reply | None]:  # fmt: skip
        up = accounts.upstream_of(sender, self.settings)
        return send_all(
            up, self.helo(), self.settings.relay_upstream_ca, mail_from, passed_on(options),
            items, True, time.monotonic() + IN_SESSION_SECONDS, self.upstreams, LANES,
            self.lanes, early=True,
        )  # fmt: skip

    async def submit(
        self, sender: Sender, mail_from: str, rcpts: Sequence[str], options: Sequence[str],
        raw: bytes, early: Early | None = None,
    ) -> str:  # fmt: skip
        """The reply to the client's DATA. All of it runs in one of the relay's
        threads: the event loop only reads and answers (parsing, the store and
        the upstream took 5 ms of it per message, and every hop between the
        loop and a thread costs a wake-up on a loaded machine). Whoever began
        ``early`` abandons it once this answers (Submission.smtp_DATA): a
        no-op once its copies were handed over."""
        return await self.run(
            self.deliver, sender, mail_from, list(rcpts), list(options), raw, early
        )

    def deliver(
        self, sender: Sender, mail_from: str, rcpts: list[str], options: list[str], raw: bytes,
        early: Early | None = None,
    ) -> str:  # fmt: skip
        arrival = time.time()
        domain = sender.email.rpartition("@")[2]
        prep = split.prepare(raw, domain)
        del raw
        foreign = [a for a in prep.from_addresses if a not in sender.addresses]
        if foreign:
            return (
                f"550 5.7.1 From: {foreign[0]} is not an address of {sender.email}; "
                f"add it with `mailbeacon senders set {sender.email} --also {foreign[0]}`"
            )
        try:
            up = accounts.upstream_of(sender, self.settings)
        except SecretKeyError as exc:
            log.error("sender %s: %s", sender.email, exc)
            return "451 4.3.0 the relay cannot open this sender's upstream password; tell its admin"
        mode = prep.track or sender.track
        wanted = passed_on(options)
        # Each copy's envelope goes upstream at once, while the messages are
        # created (their commit, an fsync) and the message is read for its
        # copies: only a copy's body needs its message id, and the body leaves
        # only after the commit (a copy made from `creating` waits for it).
        maker = Once(lambda: split.copy_maker(prep.data, mode, self.signer(), self.base_url))
        clicks = split.tracks_clicks(mode)  # the messages' links come from a copy
        creating = self.lanes.submit(
            self._create, prep, rcpts, (lambda mid: maker()(mid)) if clicks else None
        )

        def copy(i: int) -> bytes:
            return maker()(creating.result().message_ids[i]).data

        # Side by side only while the copies are small: each lane holds its
        # own copy in memory (3 copies of a 25 MB attachment would not fit the
        # 3x-the-message memory target). A client's SIZE is its word only: a
        # bigger message than it declared is not handed to the early lanes.
        small = len(prep.data) <= LANES_MAX_BYTES
        if early is not None and small and early.copies.put(copy):
            replies = early.replies.result()
        else:
            if early is not None:
                early.abandon()  # none of its copies left: they go from here
            # A small copy that only gains a pixel declares its SIZE before
            # it exists (an estimate, RFC 1870: the message plus PIXEL_ROOM,
            # never less than the copy). One whose links are rewritten too
            # can grow by half (40 links in 3 KB: 2.2x), and a big one
            # matters most: those are made first and declared exactly.
            estimate = small and not clicks
            replies = send_all(
                up, self.helo(), self.settings.relay_upstream_ca, mail_from, wanted,
                [(r, functools.partial(copy, i)) for i, r in enumerate(rcpts)],
                True, time.monotonic() + IN_SESSION_SECONDS, self.upstreams,
                LANES if small else 1, self.lanes,
                len(prep.data) + PIXEL_ROOM if estimate else None,
            )  # fmt: skip
        created = creating.result()
        accepted = [r for r in replies if r is not None and r.ok]
        if not accepted and any(r is None or not r.permanent for r in replies):
            outgoing.forget_messages(self.engine, created.message_ids, created.campaign_id)
            later = next(
                (r for r in replies if r is not None and not r.permanent),
                Reply(451, "4.4.1 no copy was taken in time"),
            )
            code = later.code if 400 <= later.code < 500 else 451
            return f"{code} 4.4.1 upstream {up.host}:{up.port} said: {later}"
        outcomes = [
            _outcome(rcpt, mid, reply)
            for rcpt, mid, reply in zip(rcpts, created.message_ids, replies, strict=True)
        ]
        try:
            self._record(sender, mail_from, wanted, mode, prep, outcomes)
            failed = [o for o in outcomes if o.status == "failed"]
            if failed:
                self.queue_report(sender, prep.header_block, prep.subject, up.host, arrival,
                                  _failures(failed))  # fmt: skip
        except Exception:
            log.exception("relay: could not record a submission from %s", sender.email)
            return "451 4.3.0 the relay could not store the message; send it again"
        sent = sum(o.status == "sent" for o in outcomes)
        queued = sum(o.status == "pending" for o in outcomes)
        return (
            f"250 2.0.0 {sent} sent, {queued} queued, {len(outcomes) - sent - queued} refused"
            + (" (a report is on its way to you)" if sent + queued < len(outcomes) else "")
        )

    def helo(self) -> str:
        return self.hostname

    def _create(
        self, prep: split.Prepared, rcpts: list[str], make: Callable[[int], split.Copy] | None
    ) -> Created:
        recipients = [check_recipient(r) for r in rcpts]
        # On SQLite this commit does not wait for the disk (1-3 ms of a 14 ms
        # message on the bench machine): the copies leave after it, but the
        # client hears 250 only after _record's commit, whose fsync covers
        # this one, and no id it hands out can be handed out again after a
        # power failure (store/messages.skip_unsure_ids), so a delivered
        # copy's opens never count on someone else's message (migration
        # 0006). On PostgreSQL it waits, as every commit there.
        ids, cid = outgoing.create_copies(
            self.engine, recipients, subject=prep.subject[:2000] if prep.subject else None,
            campaign=prep.campaign, message_id_header=prep.message_id_header,
            links_of=(lambda mid: make(mid).links) if make is not None else None,
        )  # fmt: skip
        return Created(ids, cid)

    def _record(
        self, sender: Sender, mail_from: str, wanted: list[str], mode: str,
        prep: split.Prepared, outcomes: list[outgoing.Outcome],
    ) -> None:  # fmt: skip
        outgoing.record(
            self.engine, sender_id=sender.id, kind="mail", mail_from=mail_from,
            mail_options=wanted, track=mode, message_id_header=prep.message_id_header,
            headers=prep.header_block, data=prep.data, outcomes=outcomes,
            next_at=time.time() + self.settings.relay_retry_base,
        )  # fmt: skip

    # --- bounce reports ------------------------------------------------------

    def queue_report(
        self, sender: Sender, headers: bytes, subject: str | None, remote: str,
        arrival: float, failures: list[dsn.Failure],
    ) -> None:  # fmt: skip
        """Queue a DSN to the sender (the queue worker sends it within a second)."""
        report = dsn.build(
            sender=sender.email, reporting_mta=self.hostname, remote_mta=remote,
            arrival=arrival, failures=failures, original_headers=headers, subject=subject,
        )  # fmt: skip
        outgoing.record(
            self.engine, sender_id=sender.id, kind="dsn", mail_from=sender.email,
            mail_options=(), track="off", message_id_header=None,
            headers=report[: report.find(b"\r\n\r\n") + 2], data=report,
            outcomes=[outgoing.Outcome(sender.email, None, "pending")], next_at=time.time(),
        )  # fmt: skip


def _outcome(rcpt: str, mid: int, reply: Reply | None) -> outgoing.Outcome:
    if reply is None:  # not tried (time ran out, or the connection broke): queued
        return outgoing.Outcome(rcpt, mid, "pending")
    if reply.ok:
        return outgoing.Outcome(rcpt, mid, "sent", at=reply.at or time.time(), code=reply.code)
    status = "failed" if reply.permanent else "pending"
    return outgoing.Outcome(rcpt, mid, status, code=reply.code, error=reply.text)


def _failures(failed: Sequence[outgoing.Outcome]) -> list[dsn.Failure]:
    now = time.time()
    return [dsn.Failure(o.recipient, o.code or 0, o.error or "", now) for o in failed]
