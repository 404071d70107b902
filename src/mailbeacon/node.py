"""One running mailbeacon node: its settings, store, signer, memory and writer."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping
from http.cookies import SimpleCookie

from sqlalchemy import Engine
from starlette.types import Scope

from mailbeacon.classify.networks import NetworkSet
from mailbeacon.classify.useragent import load_parser
from mailbeacon.config import Settings, default_data_dir
from mailbeacon.geo import Geo
from mailbeacon.hits import iphash
from mailbeacon.hits.clientip import ClientIP, IPStorage
from mailbeacon.hits.labeller import Labeller
from mailbeacon.hits.memory import Memory
from mailbeacon.hits.recorder import Recorder
from mailbeacon.notify import email_settings
from mailbeacon.relay.service import RelayService
from mailbeacon.relay.service import wanted as relay_wanted
from mailbeacon.store import keys, make_engine, privacy
from mailbeacon.store import networks as network_store
from mailbeacon.tokens import Signer, TokenError
from mailbeacon.web.proxycheck import ProxyCheck

log = logging.getLogger("mailbeacon")

# How often a node re-reads signing keys and network lists, so a change made
# on any node (or by the CLI) reaches every node within this many seconds.
REFRESH_SECONDS = 10.0
# Retention runs at start and then daily: events older than N days are a
# day too late at worst, and a purge pass costs ~20 ms per 5k rows.
RETENTION_SECONDS = 86400.0
SENDER_COOKIE = "mb_sender"
SENDER_COOKIE_DAYS = 365


class Node:
    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        primary: bool = True,
        relay_sockets: Mapping[int, socket.socket] | None = None,
    ) -> None:
        self.settings = settings
        # The SMTP ports serve bound before anything was built (port -> socket);
        # without them the relay binds its ports itself when it starts.
        self.relay_sockets = dict(relay_sockets or {})
        # With serve --workers N, only the first process runs what must run
        # once per node: webhook delivery, the relay, mailbox watchers,
        # reminders and retention. Every process tracks, serves and writes.
        self.primary = primary
        self.engine = engine or make_engine(settings.database_url, sqlite_sync=settings.sqlite_sync)
        self.base_url = settings.public_base_url
        self.client_ip = ClientIP(settings.trusted_networks())
        self.proxy_check = ProxyCheck(self.client_ip)  # an untrusted reverse proxy in front?
        self.memory = Memory()
        self._networks = NetworkSet.builtin()
        self._networks_version: tuple[int, float] | None = None
        geo = Geo(settings.geoip_db) if settings.geoip_db else None
        self.labeller = Labeller(
            self.engine,
            self.memory,
            self.networks,
            self.has_sender_cookie,
            geo=geo,
            enabled=settings.classify,
        )
        self.recorder = Recorder(
            self.engine,
            queue_max=settings.queue_max,
            commit_timeout=settings.commit_timeout,
            on_commit=self.labeller.after_commit,
        )
        # Notifications: outbox rows in each batch's transaction, sent by a worker.
        from mailbeacon.notify import Worker, make_tx_hook

        # Where first-open notices go: Settings -> Email notices or the config
        # file, read at start and on each refresh (no restart after a change).
        self.notify_to = settings.notify_email if settings.smtp_host else ""
        self.recorder.tx_hooks.append(make_tx_hook(lambda: self.notify_to))
        self.notifier = Worker(self.engine, settings, self.base_url)
        # --- replies (issue 15): mailbox watchers and reminders ------------------
        from mailbeacon.mailboxes.watcher import Watchers
        from mailbeacon.reminders import ReminderLoop, cancel_hook

        self.watchers = Watchers(self.engine, settings, self.recorder.add)
        self.recorder.tx_hooks.append(cancel_hook)
        self.reminders = ReminderLoop(self.engine, self.recorder.tx_hooks)
        # --- end replies -------------------------------------------------------
        self._signer: Signer | None = None
        self._ip_storage: IPStorage | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._privacy_version: str | None = None
        self.started_at = time.time()
        # --- relay (issue 14): SMTP listeners and the outgoing queue worker
        self.relay: RelayService | None = None

    def prepare(self) -> None:
        """Things that need the store: keys generated on first start, lists loaded."""
        self._signer = keys.ensure_signer(self.engine)
        full = self.settings.store_ip == "full"
        # The key is outside the database (a data-directory file or a setting);
        # the database only checks it is the same on every node (iphash.py).
        key = iphash.load(
            self.engine,
            self.settings.data_dir or default_data_dir(),
            self.settings.ip_hash_key,
        )
        self._ip_storage = IPStorage(key, full=full)
        self._refresh_networks()
        self._privacy_version = privacy.privacy_version(self.engine)
        self.reload_email()

    def reload_email(self) -> None:
        """Read where notices go again (after Settings -> Email notices changed)."""
        self.notify_to = email_settings.notify_address(self.engine, self.settings)

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

    def networks(self) -> NetworkSet:
        return self._networks

    def has_sender_cookie(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"cookie" and SENDER_COOKIE.encode() in value:
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                    morsel = jar.get(SENDER_COOKIE)
                    if morsel is None:
                        return False
                    issued = self.signer().verify_sender_cookie(morsel.value)
                except (TokenError, ValueError):
                    return False
                return time.time() - issued < SENDER_COOKIE_DAYS * 86400
        return False

    def saw_sender(self, peer: str, forwarded_for: str | None) -> None:
        """The sender used the API or dashboard from here: hits from it are "self"."""
        self.memory.saw_sender(self.client_ip.resolve(peer, forwarded_for))

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare)
        if self.settings.classify:
            await asyncio.to_thread(load_parser)  # not on the first hit's time
        self.recorder.start(asyncio.get_running_loop())
        self._refresher = asyncio.create_task(self._refresh())
        if not self.primary:
            return
        if self.settings.retention_days > 0:
            self._retention = asyncio.create_task(self._retain())
        self.notifier.start()
        # --- relay: started when serve has --smtp-port/--smtps-port or senders exist
        if await asyncio.to_thread(relay_wanted, self.settings, self.engine):
            self.relay = RelayService(
                self.engine, self.settings, self.signer, self.base_url, self.relay_sockets
            )
            await self.relay.start()
        await self.watchers.start()  # replies (issue 15)
        await self.reminders.start()  # replies (issue 15)

    async def stop(self) -> None:
        if self.relay is not None:  # --- relay
            await self.relay.stop()
        for task in (self._refresher, self._retention):
            if task is not None:
                task.cancel()
        await self.watchers.stop()  # replies (issue 15)
        await self.reminders.stop()  # replies (issue 15)
        await self.notifier.stop()
        await asyncio.to_thread(self.recorder.stop)

    def _refresh_networks(self) -> None:
        current = network_store.version(self.engine)
        if current != self._networks_version:
            # Built off the hot path (a 300k-range list takes ~1 s), then swapped.
            self._networks = network_store.load_set(self.engine)
            self._networks_version = current

    def _refresh_once(self) -> None:
        fresh = keys.load_signer(self.engine)
        if fresh is not None:
            self._signer = fresh
        self._refresh_networks()
        self._check_privacy()
        self.reload_email()

    def _check_privacy(self) -> None:
        """An opt-out or erase happened on some node or in the CLI (the
        ``privacy_version`` setting moved): forget cached messages, so the next
        hit re-reads its message's facts and an opted-out one records nothing."""
        version = privacy.privacy_version(self.engine)
        if version != self._privacy_version:
            self._privacy_version = version
            self.memory.clear()

    async def _retain(self) -> None:
        """Drop raw events older than ``retention_days``, now and once a day."""
        while True:
            try:
                n = await asyncio.to_thread(
                    privacy.purge, self.engine, self.settings.retention_days * 86400.0
                )
                log.info(
                    "retention: %d events and %d deliveries older than %d days purged",
                    n["events"],
                    n["outbox"],
                    self.settings.retention_days,
                )
            except Exception as exc:  # noqa: BLE001 - store down: try again tomorrow
                log.warning("retention purge failed: %s", exc)
            await asyncio.sleep(RETENTION_SECONDS)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self._refresh_once)
            except Exception as exc:  # noqa: BLE001 - store down: keep what we have
                log.debug("refresh failed: %s", exc)
