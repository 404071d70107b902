"""One running mailbeacon node: its settings, store, signer and writer."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import Engine

from mailbeacon.clientip import ClientIP, IPStorage
from mailbeacon.config import Settings
from mailbeacon.recorder import Recorder
from mailbeacon.store import keys, make_engine
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon")

# How often a node re-reads the signing keys, so a `keys rotate-signing` run
# on any node (or the CLI) reaches every node within this many seconds.
KEY_REFRESH_SECONDS = 10.0


class Node:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, sqlite_sync=settings.sqlite_sync)
        self.base_url = settings.public_base_url
        self.client_ip = ClientIP(settings.trusted_networks())
        self.recorder = Recorder(
            self.engine, queue_max=settings.queue_max, commit_timeout=settings.commit_timeout
        )
        self._signer: Signer | None = None
        self._ip_storage: IPStorage | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.started_at = time.time()

    def prepare(self) -> None:
        """Things that need the store: keys generated on first start."""
        self._signer = keys.ensure_signer(self.engine)
        self._ip_storage = IPStorage(keys.ip_hash_key(self.engine), full=self.settings.store_ip == "full")

    def signer(self) -> Signer:
        if self._signer is None:
            self.prepare()
        assert self._signer is not None
        return self._signer

    def ip_storage(self) -> IPStorage:
        if self._ip_storage is None:
            self.prepare()
        assert self._ip_storage is not None
        return self._ip_storage

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare)
        self.recorder.start(asyncio.get_running_loop())
        self._refresher = asyncio.create_task(self._refresh_keys())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await asyncio.to_thread(self.recorder.stop)

    async def _refresh_keys(self) -> None:
        while True:
            await asyncio.sleep(KEY_REFRESH_SECONDS)
            try:
                fresh = await asyncio.to_thread(keys.load_signer, self.engine)
            except Exception as exc:  # noqa: BLE001 - store down: keep the keys we have
                log.debug("key refresh failed: %s", exc)
                continue
            if fresh is not None:
                self._signer = fresh
