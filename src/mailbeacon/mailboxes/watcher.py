"""Watching mailboxes inside ``serve``: one thread per mailbox this node
leases, and a supervisor that hands out the leases.

A mailbox's thread connects, looks at what is new (check.py), then waits
in IDLE (or sleeps, for servers without it) and looks again when the
server announces mail, and at least every ``mailbox_poll_seconds``. When
the connection drops it reconnects with backoff (1 s doubling to a
minute); a refused login marks the mailbox failing with the server's
words and waits a minute doubling to an hour, and no node tries it again
before ``next_try_at``: a wrong password never becomes a login storm.

Several nodes share the mailboxes through a lease row (LEASE_SECONDS,
renewed every SUPERVISE_SECONDS): a node that dies frees its mailboxes
when the lease runs out, and a node that lost its lease stops its thread
before writing its checkpoint (``store.checked`` is conditional on the
owner), so a mailbox is never read by two nodes at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import Engine

from mailbeacon.config import Settings
from mailbeacon.mailboxes.check import Context, LeaseLost, NotRecorded, check
from mailbeacon.mailboxes.imap import AuthFailed, Lost, Session
from mailbeacon.mailboxes.url import BadURL, parse
from mailbeacon.model import Event
from mailbeacon.periodic import Periodic
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.secretbox import load as load_box
from mailbeacon.store import mailboxes as store
from mailbeacon.store.mailboxes import Mailbox

log = logging.getLogger("mailbeacon.mailboxes")
AddAsync = Callable[[Event], Coroutine[Any, Any, bool]]  # Recorder.add

LEASE_SECONDS = 60.0
SUPERVISE_SECONDS = 2.0  # how soon a new mailbox, or a lapsed lease, is picked up
RETRY_FIRST, RETRY_CAP = 1.0, 60.0  # after a dropped connection
AUTH_FIRST, AUTH_CAP = 60.0, 3600.0  # after a refused login


def backoff(first: float, cap: float, failures: int) -> float:
    return float(min(first * 2 ** max(failures - 1, 0), cap))


def node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class MailboxThread(threading.Thread):
    def __init__(
        self,
        box: Mailbox,
        engine: Engine,
        settings: Settings,
        owner: str,
        add: Callable[[Event], bool],
        clock: Callable[[], float] = time.time,
        handed: set[tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(name=f"mailbeacon-imap-{box.id}", daemon=True)
        self.box = box
        self.engine = engine
        self.settings = settings
        self.owner = owner
        self.stop_event = threading.Event()
        self.ctx = Context(
            engine=engine,
            box=box,
            owner=owner,
            add=add,
            backfill_days=settings.mailbox_backfill_days,
            own=frozenset({box.email}),
            clock=clock,
            handed=handed if handed is not None else set(),
        )
        self.clock = clock
        self.session: Session | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        failures = self.box.failures
        while not self.stop_event.is_set():
            try:
                self._watch()
                return
            except AuthFailed as exc:
                failures += 1
                wait = backoff(AUTH_FIRST, AUTH_CAP, failures)
                self._failed(
                    f"IMAP login refused by {self._where()} ({exc}); fix the password with "
                    f"`mailbeacon mailboxes add --email {self.box.email} --imap URL`",
                    wait,
                )
                return  # the supervisor starts a thread again after next_try_at
            except (SecretKeyError, BadURL) as exc:
                self._failed(str(exc), AUTH_CAP)
                return
            except LeaseLost:
                log.info("mailbox %s: another node holds it now", self.box.email)
                return
            except (Lost, NotRecorded) as exc:
                failures += 1
                wait = backoff(RETRY_FIRST, RETRY_CAP, failures)
                self._failed(f"{self._where()}: {exc}; reconnecting", wait)
                self.stop_event.wait(wait)
            except Exception as exc:
                log.exception("mailbox %s: unexpected error", self.box.email)
                failures += 1
                wait = backoff(RETRY_FIRST, RETRY_CAP, failures)
                self._failed(f"unexpected error: {exc!r}"[:300], wait)
                self.stop_event.wait(wait)
            finally:
                if self.session is not None:
                    self.session.close()
                    self.session = None

    def _where(self) -> str:
        return self.box.imap_url.split("://", 1)[-1].split("@", 1)[-1].split("?", 1)[0]

    def _failed(self, error: str, wait: float) -> None:
        log.warning("mailbox %s: %s (next try in %.0f s)", self.box.email, error, wait)
        now = self.clock()
        try:
            store.failed(self.engine, self.box.id, error, now + wait, now)
        except Exception as exc:  # noqa: BLE001 - the store may be down too
            log.warning("mailbox %s: cannot record the failure: %s", self.box.email, exc)

    def _watch(self) -> None:
        secret = self.box.imap_secret
        password = load_box(self.settings).open(secret) if secret else None
        url = parse(self.box.imap_url, password)
        self.session = session = Session(url, self.box.folder, self.settings.imap_ca)
        folder = session.open()
        box = store.get(self.engine, self.box.email) or self.box
        last = box.last_uid if box.uidvalidity == folder.uidvalidity else None
        poll = max(self.settings.mailbox_poll_seconds, 1.0)
        while not self.stop_event.is_set():
            last = check(self.ctx, session, folder, last)
            # New UIDs are found by searching above the checkpoint, so the
            # folder's UIDNEXT from EXAMINE needs no refresh.
            session.wait(poll, self.stop_event)


def blocking(
    add: AddAsync, loop: asyncio.AbstractEventLoop, timeout: float
) -> Callable[[Event], bool]:
    """``Recorder.add`` for a thread: waits for the commit on the node's loop."""

    def call(event: Event) -> bool:
        future = asyncio.run_coroutine_threadsafe(add(event), loop)
        try:
            return bool(future.result(timeout))
        except Exception:  # noqa: BLE001 - timeout or loop closing: "not recorded"
            return False

    return call


class Watchers:
    """The node's part: lease mailboxes, run a thread for each one held."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        add: AddAsync,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._add_async = add
        self.add: Callable[[Event], bool] = lambda _e: False
        self.clock = clock
        self.owner = node_id()
        self.threads: dict[int, MailboxThread] = {}
        # (message id, reply hash) handed to the recorder, per mailbox: a
        # reply whose commit was slow is not handed over twice.
        self.handed: dict[int, set[tuple[int, str]]] = {}
        self._loop = Periodic(self.tick, SUPERVISE_SECONDS, "mailboxes")

    async def start(self) -> None:
        self.add = blocking(
            self._add_async, asyncio.get_running_loop(), self.settings.commit_timeout + 5
        )
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await asyncio.to_thread(self._stop_all)

    def tick(self) -> None:
        """One round: renew what we hold, start what is free and due, stop
        what was removed, changed, or taken over."""
        now = self.clock()
        boxes = {b.id: b for b in store.all_mailboxes(self.engine)}
        for mid, thread in list(self.threads.items()):
            box = boxes.get(mid)
            gone = box is None or box.updated_at != thread.box.updated_at
            if gone or not thread.is_alive() or not self._lease(mid, now):
                self._end(mid)
        for mid, box in boxes.items():
            if mid in self.threads:
                continue
            if box.next_try_at is not None and box.next_try_at > now:
                continue
            if not self._lease(mid, now):
                continue
            thread = MailboxThread(box, self.engine, self.settings, self.owner, self.add,
                                   self.clock, self.handed.setdefault(mid, set()))  # fmt: skip
            self.threads[mid] = thread
            thread.start()

    def _lease(self, mid: int, now: float) -> bool:
        return store.take_lease(self.engine, mid, self.owner, LEASE_SECONDS, now)

    def _end(self, mid: int) -> None:
        thread = self.threads.pop(mid)
        thread.stop()
        thread.join(10)
        try:
            store.release_lease(self.engine, mid, self.owner)
        except Exception as exc:  # noqa: BLE001 - it lapses by itself
            log.debug("lease release failed: %s", exc)

    def _stop_all(self) -> None:
        for thread in self.threads.values():
            thread.stop()
        for mid in list(self.threads):
            self._end(mid)
