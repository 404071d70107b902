"""A job a node runs every few seconds in a thread (the mailbox supervisor,
the reminder loop): started and stopped with the node, never stopped by an
error (a store outage is retried at the next round)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mailbeacon import metrics


class Periodic:
    def __init__(self, job: Callable[[], object], seconds: float, name: str) -> None:
        self.job = job
        self.seconds = seconds
        self.name = name
        self.log = logging.getLogger(f"mailbeacon.{name}")
        self._task: asyncio.Task[None] | None = None
        self.rounds = metrics.JOB_ROUNDS.labels(job=name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mailbeacon-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.job)
            except Exception as exc:  # noqa: BLE001 - store down: try again next round
                self.log.debug("%s round failed: %s", self.name, exc)
            self.rounds.inc()
            await asyncio.sleep(self.seconds)
