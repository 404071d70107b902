"""The outgoing queue worker: one per node, sends the copies that wait.

Every pass claims due copies (a lease, so nodes never share one), groups
them by submission, rebuilds each copy from the stored submission and sends
it over one upstream connection per submission. An accepted copy gets its
``sent_at``; "later" is retried with backoff (60 s doubling to an hour, with
jitter); a 5xx, or "later" for longer than ``relay_max_age``, fails it and
queues a bounce report to the sender. The queue is in the store, so a
restart or SIGKILL loses nothing: leases run out and another pass sends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from mailbeacon import metrics
from mailbeacon.relay import accounts, dsn, split
from mailbeacon.relay.submit import Relay
from mailbeacon.relay.upstream import Reply, send_all
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.store import outgoing
from mailbeacon.store import senders as sender_store
from mailbeacon.store.outbox import backoff

log = logging.getLogger("mailbeacon.relay")
ROUNDS = metrics.JOB_ROUNDS.labels(job="relay_queue")

POLL_SECONDS = 1.0  # how late a due copy may start; an idle poll is one indexed SELECT
BATCH = 20
SEND_SECONDS = 600.0  # one pass's upstream session may take this long before it yields


class QueueWorker:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.engine = relay.engine
        self.settings = relay.settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mailbeacon-relay-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass

    async def _run(self) -> None:
        while True:
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - store down: try again soon
                log.warning("relay queue pass failed: %s", exc)
                n = 0
            ROUNDS.inc()
            self.relay.upstreams.sweep()  # closes sockets only: never blocks
            if n < BATCH:
                await asyncio.sleep(POLL_SECONDS)

    async def run_once(self) -> int:
        """Claim one batch and send it; returns how many copies were claimed."""
        lease = self.settings.relay_lease
        claimed = await self.relay.run(outgoing.claim, self.engine, BATCH, None, lease)
        if not claimed:
            return 0
        holding = asyncio.create_task(self._hold([c.id for c in claimed], lease))
        try:
            groups = itertools.groupby(claimed, key=lambda c: c.submission_id)
            await asyncio.gather(*(self._submission(sid, list(cs)) for sid, cs in groups))
        finally:
            holding.cancel()
        return len(claimed)

    async def _hold(self, ids: list[int], lease: float) -> None:
        """Renew the lease every third of it while the batch is sent: however
        long a send takes, no other node takes these copies, and if this node
        dies they are free one lease later (not after the longest send)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(lease / 3)
            try:
                # The default executor: the relay's own threads may all be sending.
                await loop.run_in_executor(None, outgoing.extend_lease, self.engine, ids, lease)
            except Exception as exc:  # noqa: BLE001 - store down: the next renewal may work
                log.warning("relay: could not renew the queue lease: %s", exc)

    async def _submission(self, sid: int, copies: list[outgoing.Claimed]) -> None:
        try:
            await self.relay.run(self._send, sid, copies)
        except Exception:
            log.exception("relay: submission %s failed unexpectedly; retried later", sid)
            for c in copies:
                await self.relay.run(self._retry, c, Reply(451, "4.3.0 relay error"))

    def _send(self, sid: int, copies: list[outgoing.Claimed]) -> None:
        sub = outgoing.submission(self.engine, sid)
        sender = sender_store.by_id(self.engine, copies[0].sender_id)
        if sub is None or sub.data is None or sender is None:
            for c in copies:
                outgoing.finish(self.engine, c, status="failed", code=None, error="gone")
            return
        try:
            up = accounts.upstream_of(sender, self.settings)
        except SecretKeyError as exc:
            log.error("sender %s: %s", sender.email, exc)
            for c in copies:
                self._retry(c, Reply(451, "4.3.0 secret key missing or wrong"))
            return
        data = sub.data
        make = split.copy_maker(data, sub.track, self.relay.signer(), self.relay.base_url)

        def maker(mid: int | None) -> bytes:
            return data if mid is None else make(mid).data

        items = [(c.recipient, (lambda m=c.message_id: maker(m))) for c in copies]
        replies = send_all(
            up, self.relay.helo(), self.settings.relay_upstream_ca, sub.mail_from,
            sub.mail_options, items, False, time.monotonic() + SEND_SECONDS, self.relay.upstreams,
        )  # fmt: skip
        failures: list[dsn.Failure] = []
        for c, reply in zip(copies, replies, strict=True):
            if reply is not None and reply.ok:
                outgoing.finish(self.engine, c, status="sent", code=reply.code, error=None,
                                at=reply.at or time.time())  # fmt: skip
            elif reply is not None and reply.permanent:
                outgoing.finish(self.engine, c, status="failed", code=reply.code, error=reply.text)
                failures.append(dsn.Failure(c.recipient, reply.code, reply.text, time.time()))
            elif self._retry(c, reply or Reply(451, "4.4.1 not tried in time")):
                failures.append(dsn.Failure(c.recipient, 0, str(reply or ""), time.time(), True))
        if failures and sub.kind == "mail":  # never a report about a report
            self.relay.queue_report(
                sender, sub.headers, _subject(sub.headers), up.host, sub.created_at, failures
            )

    def _retry(self, c: outgoing.Claimed, reply: Reply) -> bool:
        """Retry later, or give up when the copy is too old; True when given up."""
        now = time.time()
        if now - c.created_at > self.settings.relay_max_age:
            outgoing.finish(self.engine, c, status="failed", code=reply.code, error=reply.text)
            return True
        outgoing.finish(
            self.engine, c, status="pending", code=reply.code, error=reply.text,
            next_at=now + backoff(self.settings.relay_retry_base, c.attempts),
        )  # fmt: skip
        return False


def _subject(headers: bytes) -> str | None:
    return split.prepare(headers + b"\r\n").subject
