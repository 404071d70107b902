"""The delivery worker: one per node, claims due outbox rows and sends them."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from sqlalchemy import Engine

from mailbeacon.config import Settings
from mailbeacon.notify import deliver
from mailbeacon.notify import store as ns

log = logging.getLogger("mailbeacon.notify")

POLL_SECONDS = 0.5  # how late a due delivery may start; a claim is one indexed query
BATCH = 20
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class Worker:
    def __init__(self, engine: Engine, settings: Settings, base_url: str) -> None:
        self.engine = engine
        self.settings = settings
        self.base_url = base_url
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="mailbeacon-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - store down: try again soon
                log.debug("outbox pass failed: %s", exc)
                n = 0
            if n < BATCH:
                await asyncio.sleep(POLL_SECONDS)

    async def run_once(self) -> int:
        """Claim and deliver one batch; returns how many rows were claimed."""
        rows = await asyncio.to_thread(ns.claim, self.engine, BATCH)
        if rows:
            await asyncio.gather(*(self._one(r) for r in rows))
        return len(rows)

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
                    await asyncio.to_thread(
                        self._finish,
                        row,
                        False,
                        None,
                        "the event is no longer a human one",
                        "skipped",
                    )
                    return
                body = deliver.dumps(payload)
                await asyncio.to_thread(ns.save_payload, self.engine, row.id, body)
            if row.channel == "email":
                await self._email(row, body)
            else:
                await self._webhook(row, body)
        except Exception as exc:  # noqa: BLE001 - any failure is a retry, never a crash
            log.exception("delivery %s failed unexpectedly", row.id)
            await asyncio.to_thread(self._finish, row, False, None, repr(exc)[:500], None)

    def _finish(
        self, row: ns.Claimed, ok: bool, status: int | None, error: str | None, final: str | None
    ) -> None:
        ns.finish(
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
            await asyncio.to_thread(self._finish, row, False, None, "webhook deleted", "cancelled")
            return
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mailbeacon-webhook/1",
            deliver.SIGNATURE_HEADER: deliver.sign(hook["secret"], raw, int(time.time())),
            "Mailbeacon-Delivery": str(row.id),
            "Mailbeacon-Event": row.event_type,
        }
        assert self._client is not None
        try:
            resp = await self._client.post(hook["url"], content=raw, headers=headers)
        except httpx.HTTPError as exc:
            await asyncio.to_thread(
                self._finish, row, False, None, str(exc)[:500] or type(exc).__name__, None
            )
            return
        ok = 200 <= resp.status_code < 300
        error = None if ok else resp.text[:300]
        await asyncio.to_thread(self._finish, row, ok, resp.status_code, error, None)

    async def _email(self, row: ns.Claimed, body: str) -> None:
        import json

        s = self.settings
        if not s.smtp_host or not row.target:
            await asyncio.to_thread(self._finish, row, False, None, "smtp_host is not set", None)
            return
        mail = deliver.email_for(json.loads(body), s, row.target)
        try:
            await asyncio.to_thread(deliver.send_email, s, mail)
        except Exception as exc:  # noqa: BLE001 - SMTP/socket errors: retry later
            await asyncio.to_thread(self._finish, row, False, None, str(exc)[:500], None)
            return
        await asyncio.to_thread(self._finish, row, True, 250, None, None)
