"""The one writer: group commit, and ``add()`` resolves once the hit is durable.

Hits queue in memory; a single thread takes *everything* that arrived while
the previous commit ran and writes it in one transaction (group commit, no
fixed timer: under light load a batch is one event and waits for nothing;
under heavy load batches grow and one fsync pays for all of them).

If the store fails, waiting hits are answered "not recorded" at once, the
events are kept in memory (up to ``queue_max``) and retried with backoff;
while the store is down new hits are answered immediately instead of waiting
on timeouts, and recording resumes by itself when a write succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from mailbeacon import metrics, rollups
from mailbeacon.model import Event
from mailbeacon.store import events as event_store
from mailbeacon.store.db import placeholder

log = logging.getLogger("mailbeacon.recorder")

_Item = tuple[Event, "asyncio.Future[bool] | None"]
TxHook = Callable[[Any, str, bool, Sequence[Event], list[rollups.Transition]], None]


class Recorder:
    def __init__(
        self,
        engine: Engine,
        *,
        queue_max: int = 20_000,
        commit_timeout: float = 5.0,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        # Called inside each batch's transaction, after events and rollups are
        # written: (cursor, param mark, is_postgresql, batch, rollup transitions).
        # A durable outbox writes its rows here, so a committed hit always has
        # its notification. A hook that raises fails the batch (and retries).
        self.tx_hooks: list[TxHook] = []
        self.engine = engine
        self.queue_max = queue_max
        self.commit_timeout = commit_timeout
        self.on_commit = on_commit
        self.down = False
        self._pending: list[_Item] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw: Any = None
        self._sql = event_store.insert_sql(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        self._mark = placeholder(engine)

    # -- the event loop side -------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="mailbeacon-writer", daemon=True)
        self._thread.start()

    async def add(self, event: Event) -> bool:
        """Queue ``event``; True once it is committed, False if it may not be."""
        loop = self._loop
        assert loop is not None, "Recorder.start() was not called"
        fut: asyncio.Future[bool] = loop.create_future()
        # Everything the writer thread also touches (the pending list, which
        # it swaps for a fresh one, and ``down``) is read and changed under
        # the lock only: reading the list outside it let a hit be appended to
        # a batch the writer had already taken, acknowledged and never written.
        with self._cond:
            if len(self._pending) >= self.queue_max:
                refused: Any = metrics.UNRECORDED_FULL
            elif self.down:
                # Keep it for when the store is back, but do not make the mail
                # client wait for an outage: answer "not recorded" now.
                self._pending.append((event, None))
                refused = metrics.UNRECORDED_DOWN
            else:
                self._pending.append((event, fut))
                self._cond.notify()
                refused = None
        if refused is not None:
            refused.inc()
            return False
        timer = loop.call_later(self.commit_timeout, _expire, fut)
        ok = await fut
        timer.cancel()
        return ok

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._raw is not None:
            try:
                self._raw.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._raw = None

    @property
    def queued(self) -> int:
        return len(self._pending)

    # -- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        backoff = 0.25
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            metrics.QUEUE.set(len(batch))
            started = time.perf_counter()
            error = self._write([e for e, _ in batch])
            if error is None:
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.observe(len(batch))
                with self._cond:
                    if self.down:
                        log.warning("store is back: recording resumed")
                    self.down = False
                metrics.STORE_UP.set(1)
                backoff = 0.25
                self._settle(batch, True)
                if self.on_commit is not None:
                    try:
                        self.on_commit([e for e, _ in batch])
                    except Exception:  # noqa: BLE001 - listeners must not stop the writer
                        log.exception("on_commit listener failed")
                continue
            with self._cond:
                if not self.down:
                    log.error("store write failed, answering hits unrecorded: %s", error)
                self.down = True
            metrics.STORE_UP.set(0)
            self._settle(batch, False)
            with self._cond:
                keep = [(e, None) for e, _ in batch] + self._pending
                if len(keep) > self.queue_max:
                    metrics.DROPPED.inc(len(keep) - self.queue_max)
                    keep = keep[-self.queue_max :]
                self._pending = keep
                if self._stopping:
                    if self._pending:
                        log.error(
                            "store down at shutdown: %d unacknowledged events not written",
                            len(self._pending),
                        )
                        metrics.DROPPED.inc(len(self._pending))
                    return
                self._cond.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _write(self, batch: Sequence[Event]) -> BaseException | None:
        try:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
            cur = self._raw.cursor()
            try:
                # Cut and cleaned in place first: the rollups and hooks below
                # must see the values as stored.
                rows = [event_store.row(event_store.fit(e)) for e in batch]
                if self._sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                    cur.executemany(self._sql, rows)
                    # One writer holds the lock for the whole batch, so its
                    # rowids are consecutive and end at last_insert_rowid().
                    cur.execute("SELECT last_insert_rowid()")
                    last = int(cur.fetchone()[0])
                    ids: list[int] = list(range(last - len(batch) + 1, last + 1))
                else:
                    # psycopg pipelines executemany; returning=True keeps
                    # each row's id (several nodes interleave sequence values).
                    cur.executemany(self._sql + " RETURNING id", rows, returning=True)
                    ids = []
                    while True:
                        ids.append(int(cur.fetchone()[0]))
                        if not cur.nextset():
                            break
                for e, eid in zip(batch, ids, strict=True):
                    e.id = eid
                # Rollups in the same transaction: a report never disagrees
                # with the events it counts.
                pg = not self._sqlite
                changes = rollups.apply(cur, self._mark, pg, [(e, 1) for e in batch])
                for hook in self.tx_hooks:
                    hook(cur, self._mark, pg, batch, changes)
                self._raw.commit()
            finally:
                cur.close()
            return None
        except Exception as exc:  # noqa: BLE001 - any store failure means "down"
            raw, self._raw = self._raw, None
            if raw is not None:
                try:
                    raw.rollback()
                    raw.close()
                except Exception:  # noqa: BLE001
                    pass
            return exc

    def _settle(self, batch: list[_Item], ok: bool) -> None:
        futs = [f for _, f in batch if f is not None]
        if futs and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_resolve, futs, ok)


def _resolve(futs: list[asyncio.Future[bool]], ok: bool) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_result(ok)
    if not ok:
        metrics.UNRECORDED_DOWN.inc(len(futs))


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)
        metrics.UNRECORDED_TIMEOUT.inc()
