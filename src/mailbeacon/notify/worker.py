"""The delivery worker: one per node, claims due outbox rows and sends them.

Receivers are isolated from each other. Rows are claimed per receiver (a
webhook, or the email channel), at most ``PER_RECEIVER`` in flight each and
``IN_FLIGHT`` in all, and each delivery runs as its own task: the claim loop
never waits for a delivery, so a receiver that drips its answer or never
answers holds its own few slots and nothing else. Before, one batch of 20
waited for its slowest member: a receiver dripping one byte a second stopped
every delivery of the node for 40+ minutes, one that never answered cut them
to ~1/s.

Each webhook delivery has one deadline for everything (resolving, connecting,
sending, the answer: ``DEADLINE_SECONDS``), not a timeout per read that a
drip resets forever. The answer is read raw (``Accept-Encoding: identity``,
never decompressed) and only up to ``RESPONSE_CAP`` bytes, for the delivery
log: a 0.5 MB gzip answer inflating to 500 MB once took the server to 1.6 GB.
Where a webhook may connect is notify/egress.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
from sqlalchemy import Engine

from mailbeacon import metrics
from mailbeacon.config import Settings
from mailbeacon.notify import deliver, egress, email_settings
from mailbeacon.store import outbox as ns

log = logging.getLogger("mailbeacon.notify")
ROUNDS = metrics.JOB_ROUNDS.labels(job="outbox")

POLL_SECONDS = 0.5  # how late a due delivery may start; a look for due rows is one read
# A receiver has this long for the whole exchange. Stripe allows 10-20 s; 15 s
# stays well inside the 60 s claim, so a slow delivery is never sent twice
# by another node while it is still running.
DEADLINE_SECONDS = 15.0
RESPONSE_CAP = 4096  # bytes of an answer kept: enough for an error message
# Slots per receiver: 4 keeps a fast receiver at hundreds of deliveries a
# second (a few ms each) while a dead one can hold at most 4 x 15 s.
PER_RECEIVER = 4
IN_FLIGHT = 64  # in all, under httpx's 100 pooled connections
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per operation, inside the deadline


class Worker:
    def __init__(self, engine: Engine, settings: Settings, base_url: str) -> None:
        self.engine = engine
        self.settings = settings
        self.base_url = base_url
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._busy: dict[ns.Receiver, set[asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return sum(len(tasks) for tasks in self._busy.values())

    def start(self) -> None:
        self._wake = asyncio.Event()  # of the loop that runs the worker
        self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="mailbeacon-outbox")

    async def stop(self) -> None:
        """Stop claiming and cancel deliveries in flight: their rows are claimed
        again once the claim expires (at least once, never lost)."""
        tasks = [t for ts in self._busy.values() for t in ts]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - store down: try again soon
                log.debug("outbox pass failed: %s", exc)
                n = 0
            ROUNDS.inc()
            if n == 0:  # nothing startable: wait for a free slot or the next poll
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim what the free slots allow, receiver by receiver, and start those
        deliveries without waiting for them; returns how many were started."""
        started = 0
        for receiver in await asyncio.to_thread(ns.due_receivers, self.engine):
            busy = len(self._busy.get(receiver, ()))
            free = min(PER_RECEIVER - busy, IN_FLIGHT - self.in_flight)
            if free <= 0:
                continue
            rows = await asyncio.to_thread(ns.claim, self.engine, free, receiver=receiver)
            for row in rows:
                self._start(receiver, row)
            started += len(rows)
        return started

    def _start(self, receiver: ns.Receiver, row: ns.Claimed) -> None:
        task = asyncio.create_task(self._one(row), name=f"mailbeacon-delivery-{row.id}")
        tasks = self._busy.setdefault(receiver, set())
        tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            if not tasks and self._busy.get(receiver) is tasks:
                del self._busy[receiver]
            self._wake.set()

        task.add_done_callback(done)

    async def _one(self, row: ns.Claimed) -> None:
        try:
            body = row.payload
            if body is None:
                payload = await asyncio.to_thread(
                    deliver.build_payload,
                    self.engine,
                    row.id,
                    row.event_type,
                    row.event_id,
                    row.message_id,
                    self.base_url,
                )
                if payload is None:
                    await self._finish(
                        row, False, None, "the event is no longer a human one", "skipped"
                    )
                    return
                body = deliver.dumps(payload)
                await asyncio.to_thread(ns.save_payload, self.engine, row.id, body)
            if row.channel == "email":
                await self._email(row, body)
            else:
                await self._webhook(row, body)
        except Exception as exc:
            log.exception("delivery %s failed unexpectedly", row.id)
            await self._finish(row, False, None, repr(exc)[:500], None)

    async def _finish(
        self, row: ns.Claimed, ok: bool, status: int | None, error: str | None, final: str | None
    ) -> None:
        await asyncio.to_thread(
            ns.finish,
            self.engine,
            row,
            ok=ok,
            status=status,
            error=error,
            base=self.settings.webhook_backoff_base,
            max_age=self.settings.webhook_max_age,
            final=final,
        )

    async def _webhook(self, row: ns.Claimed, body: str) -> None:
        hook = await asyncio.to_thread(
            ns.get_webhook, self.engine, row.webhook_id or 0, deleted=True
        )
        if hook is None or hook["deleted_at"] is not None:
            await self._finish(row, False, None, "webhook deleted", "cancelled")
            return
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mailbeacon-webhook/1",
            "Accept-Encoding": "identity",  # an answer is read raw, never inflated
            deliver.SIGNATURE_HEADER: deliver.sign(hook["secret"], raw, int(time.time())),
            "Mailbeacon-Delivery": str(row.id),
            "Mailbeacon-Event": row.event_type,
        }
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                status, answer = await self._post(hook["url"], raw, headers)
        except TimeoutError:
            error = f"no complete answer within {DEADLINE_SECONDS:g} s"
            await self._finish(row, False, None, error, None)
            return
        except (httpx.HTTPError, OSError, egress.Refused) as exc:
            await self._finish(row, False, None, str(exc)[:500] or type(exc).__name__, None)
            return
        ok = 200 <= status < 300
        await self._finish(row, ok, status, None if ok else answer[:300] or f"HTTP {status}", None)

    async def _post(self, url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST to the address egress checked, with the URL's name as Host and
        TLS SNI (so the certificate is still verified against the name)."""
        assert self._client is not None
        addr = await egress.pick(url, self.settings.webhook_allow_internal)
        target = httpx.URL(url)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "POST",
            target.copy_with(host=addr),
            content=raw,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions=extensions,
        )
        response = await self._client.send(request, stream=True)
        answer = bytearray()
        try:
            if not 200 <= response.status_code < 300:
                async for chunk in response.aiter_raw():
                    answer += chunk
                    if len(answer) >= RESPONSE_CAP:
                        break
        finally:
            await response.aclose()
        return response.status_code, answer[:RESPONSE_CAP].decode("utf-8", "replace")

    def _email_settings(self) -> email_settings.EmailSettings:
        return email_settings.effective(self.engine, self.settings).opened(self.settings)

    async def _email(self, row: ns.Claimed, body: str) -> None:
        try:
            # Read for each email: a change in Settings -> Email notices applies
            # to the next attempt, with no restart (notify/email_settings.py).
            cfg = await asyncio.to_thread(self._email_settings)
        except Exception as exc:  # noqa: BLE001 - store down or key missing: retry later
            await self._finish(row, False, None, str(exc)[:500], None)
            return
        if not cfg.host or not row.target:
            await self._finish(
                row, False, None, "no SMTP server is set (Settings -> Email notices)", None
            )
            return
        mail = deliver.email_for(json.loads(body), cfg.sender, row.target)
        try:
            await asyncio.to_thread(deliver.send_email, cfg, mail)
        except Exception as exc:  # noqa: BLE001 - SMTP/socket errors: retry later
            await self._finish(row, False, None, str(exc)[:500], None)
            return
        await self._finish(row, True, 250, None, None)
