"""The one writer: group commit, and ``add()`` resolves once the hit is durable.

Hits queue in memory; a single thread takes *everything* that arrived while
the previous commit ran and writes it in one transaction (group commit, no
fixed timer: under light load a batch is one event and waits for nothing;
under heavy load batches grow and one fsync pays for all of them).

If the store fails, waiting hits are answered "not recorded" at once, the
events are kept in memory (up to ``queue_max``) and retried with backoff;
while the store is down new hits are answered immediately instead of waiting
on timeouts, and recording resumes by itself when a write succeeds again.

A batch that fails for its *data* (a value the store refuses: an integrity
or data error, or one no driver can encode) is not an outage: it is split in
halves until the rows at fault stand alone, the rest is written, and each
refused row goes to ``dead_letters`` with the error. Those hits are durable
but are not events (nothing counts them), so they are answered "not
recorded" with ``reason=dead_letter``: the header promises a counted hit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from mailbeacon import metrics
from mailbeacon.model import Event, Unrecorded
from mailbeacon.store import events as event_store
from mailbeacon.store import rollups
from mailbeacon.store.db import WriterTurn, begin_write, is_data_error, is_sqlite, placeholder

log = logging.getLogger("mailbeacon.hits.recorder")

# None once committed, else why the hit is not (or may not be) recorded.
Outcome = Unrecorded | None
_Item = tuple[Event, "asyncio.Future[Outcome] | None"]
_Settled = list[tuple[_Item, Outcome]]
# Read times written per turn of the writer, in one UPDATE batch.
READS_PER_TURN = 500
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
        # (event id, seconds) of streamed pixels that ended: written by the
        # writer between batches, in a small transaction of their own.
        self._reads: list[tuple[int, float]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # (deadline on the loop's clock, future) of each hit waiting for its
        # commit, oldest first (commit_timeout is the same for all); only the
        # event loop thread touches these two.
        self._deadlines: deque[tuple[float, asyncio.Future[Outcome]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._raw: Any = None
        self._sql = event_store.insert_sql(engine)
        self._dead_sql = event_store.dead_letter_sql(engine)
        self._sqlite = is_sqlite(engine)
        self._turn = WriterTurn(engine)
        self._mark = placeholder(engine)

    # -- the event loop side -------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._deadlines.clear()  # a timer of an earlier loop would never fire here
        self._sweeper = None
        self._thread = threading.Thread(target=self._run, name="mailbeacon-writer", daemon=True)
        self._thread.start()

    async def add(self, event: Event) -> bool:
        """Queue ``event``; True once it is committed, False if it may not be."""
        return await self.record(event) is None

    async def record(self, event: Event) -> Outcome:
        """Queue ``event``; None once it is committed, else why it may not be."""
        loop = self._loop
        assert loop is not None, "Recorder.start() was not called"
        fut: asyncio.Future[Outcome] = loop.create_future()
        # Everything the writer thread also touches (the pending list, which
        # it swaps for a fresh one, and ``down``) is read and changed under
        # the lock only: reading the list outside it let a hit be appended to
        # a batch the writer had already taken, acknowledged and never written.
        with self._cond:
            if self._stopping:
                refused: Outcome = Unrecorded.SHUTTING_DOWN
            elif len(self._pending) >= self.queue_max:
                refused = Unrecorded.QUEUE_FULL
            elif self.down:
                # Keep it for when the store is back, but do not make the mail
                # client wait for an outage: answer "not recorded" now.
                self._pending.append((event, None))
                refused = Unrecorded.STORE_DOWN
            else:
                self._pending.append((event, fut))
                self._cond.notify()
                refused = None
        if refused is not None:
            metrics.UNRECORDED_BY[refused].inc()
            return refused
        # The commit timeout: one timer for all hits in flight (at the oldest
        # one's deadline), not a timer per hit, which was ~3 us of every hit.
        self._deadlines.append((loop.time() + self.commit_timeout, fut))
        if self._sweeper is None:
            self._sweeper = loop.call_at(self._deadlines[0][0], self._sweep)
        return await fut

    def read_time(self, event_id: int, seconds: float) -> None:
        """Queue a committed open's read time; never waits (docs/read-time.md).

        Kept apart from the hits: a batch of hits never waits for these, and
        these are written after it, as one UPDATE batch. Lost if the store is
        down for longer than ``queue_max`` of them: a duration is worth less
        than a hit, so it never takes a hit's place in memory.
        """
        with self._cond:
            if self._stopping or len(self._reads) >= self.queue_max:
                metrics.READ_TIMES_DROPPED.inc()
                return
            self._reads.append((event_id, seconds))
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._disconnect()

    @property
    def queued(self) -> int:
        return len(self._pending)

    # -- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        backoff = 0.25
        while True:
            with self._cond:
                while not self._pending and not self._reads and not self._stopping:
                    self._cond.wait()
                if not self._pending and not self._reads:
                    return
                batch, self._pending = self._pending, []
                # A bounded slice per turn: 2,000 streams ending at the cap
                # together must not hold the hits behind them in one long write.
                reads, self._reads = self._reads[:READS_PER_TURN], self._reads[READS_PER_TURN:]
            if reads:
                self._write_reads(reads)
            if not batch:
                continue
            metrics.QUEUE.set(len(batch))
            started = time.perf_counter()
            settled, unwritten, error = self._store(batch)
            if settled:
                self._settle(settled)
                written = [e for (e, _), why in settled if why is None]
                if written and self.on_commit is not None:
                    try:
                        self.on_commit(written)
                    except Exception:
                        log.exception("on_commit listener failed")
            if error is None:
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.observe(len(batch))
                with self._cond:
                    if self.down:
                        log.warning("store is back: recording resumed")
                    self.down = False
                metrics.STORE_UP.set(1)
                backoff = 0.25
                continue
            with self._cond:
                if not self.down:
                    log.error("store write failed, answering hits unrecorded: %s", error)
                self.down = True
            metrics.STORE_UP.set(0)
            self._settle([(item, Unrecorded.STORE_DOWN) for item in unwritten])
            with self._cond:
                keep = [(e, None) for e, _ in unwritten] + self._pending
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

    def _write_reads(self, reads: list[tuple[int, float]]) -> None:
        error = self._transaction(
            lambda cur: event_store.set_read_seconds(cur, self._mark, not self._sqlite, reads)
        )
        if error is None:
            return
        if is_data_error(error) or self._stopping:
            log.error("read times not written (%d): %s", len(reads), error)
            metrics.READ_TIMES_DROPPED.inc(len(reads))
            return
        with self._cond:  # the store is down: try again with the next batch
            keep = reads + self._reads
            if len(keep) > self.queue_max:
                metrics.READ_TIMES_DROPPED.inc(len(keep) - self.queue_max)
                keep = keep[-self.queue_max :]
            self._reads = keep
            self._cond.wait(0.25)

    def _store(self, items: list[_Item]) -> tuple[_Settled, list[_Item], BaseException | None]:
        """Write ``items``: (settled items, items left unwritten, store error).

        A batch refused for its data is split in halves until the rows at
        fault are alone: one bad row in n costs ~2 log2(n) extra transactions.
        """
        gone: list[Event] = []
        error = self._transaction(lambda cur: self._insert(cur, [e for e, _ in items], gone))
        if error is None:
            if gone:
                erased = {id(e) for e in gone}
                return (
                    [(it, Unrecorded.OPTED_OUT if id(it[0]) in erased else None) for it in items],
                    [],
                    None,
                )
            return [(item, None) for item in items], [], None
        for e, _ in items:
            e.id = None  # rolled back: an id from it would name another event later
        if not is_data_error(error):
            return [], items, error
        if len(items) == 1:
            return self._bury(items[0], error)
        half = len(items) // 2
        settled, unwritten, error = self._store(items[:half])
        if error is not None:
            return settled, unwritten + items[half:], error
        more, unwritten, error = self._store(items[half:])
        return settled + more, unwritten, error

    def _bury(
        self, item: _Item, refusal: BaseException
    ) -> tuple[_Settled, list[_Item], BaseException | None]:
        event = item[0]
        log.error(
            "hit on message %s refused by the store, kept in dead_letters: %s",
            event.message_id,
            refusal,
        )
        row = event_store.dead_letter_row(event, refusal, time.time())
        error = self._transaction(lambda cur: cur.execute(self._dead_sql, row))
        if error is None:
            metrics.DEAD_LETTERS.inc()
        elif is_data_error(error):
            # Cannot happen by construction (an ASCII row, the id checked),
            # and retrying it would stop the writer for good: give it up.
            log.error("dead letter refused too, hit dropped: %s", error)
            metrics.DROPPED.inc()
        else:
            return [], [item], error
        return [(item, Unrecorded.DEAD_LETTER)], [], None

    def _transaction(self, work: Callable[[Any], object]) -> BaseException | None:
        """Run ``work(cursor)`` in one transaction; the error if it failed."""
        try:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
            cur = self._raw.cursor()
            try:
                with self._turn:  # other processes' writers (serve --workers)
                    begin_write(cur, self._sqlite)
                    work(cur)
                    self._raw.commit()
            finally:
                cur.close()
            return None
        except Exception as exc:  # noqa: BLE001 - sorted by the caller: data or store
            if self._raw is not None:
                try:
                    self._raw.rollback()
                except Exception:  # noqa: BLE001 - a broken connection may not roll back
                    self._disconnect()
            if not is_data_error(exc):
                self._disconnect()  # the store may be gone: reconnect on the next try
            return exc

    def _insert(self, cur: Any, batch: Sequence[Event], gone: list[Event]) -> None:
        """Write ``batch`` with its rollups and hooks; events whose message is
        gone (erased, on any node, since the hit was classified from a cached
        copy) are not written but added to ``gone``."""
        pg = not self._sqlite
        # Locks the batch's messages' rollup rows first: an erase deletes
        # those before the events, so it either sees this batch's events
        # (and deletes them) or this batch sees the message gone. Never an
        # orphan, not even inside a node's 10 s cache of message facts.
        state = rollups.lock_state(cur, self._mark, pg, (e.message_id for e in batch))
        if len(state) < len({e.message_id for e in batch}):
            gone.extend(e for e in batch if e.message_id not in state)
            batch = [e for e in batch if e.message_id in state]
            if not batch:
                return
        # Cut and cleaned in place first: the rollups and hooks below
        # must see the values as stored.
        rows = [event_store.row(event_store.fit(e)) for e in batch]
        ids = event_store.insert_rows(cur, self._sql, rows, self._sqlite)
        for e, eid in zip(batch, ids, strict=True):
            e.id = eid
        # Rollups in the same transaction: a report never disagrees
        # with the events it counts.
        changes = rollups.apply(cur, self._mark, pg, [(e, 1) for e in batch], state)
        for hook in self.tx_hooks:
            hook(cur, self._mark, pg, batch, changes)

    def _disconnect(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass

    def _settle(self, settled: _Settled) -> None:
        futs = [(f, why) for (_, f), why in settled if f is not None]
        if futs and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._resolve, futs)

    # -- the event loop side, called back -------------------------------------

    def _resolve(self, futs: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
        for fut, why in futs:
            if not fut.done():
                fut.set_result(why)
                if why is not None:
                    metrics.UNRECORDED_BY[why].inc()
        # Batches commit in the order hits came: the answered ones are at the front.
        deadlines = self._deadlines
        while deadlines and deadlines[0][1].done():
            deadlines.popleft()

    def _sweep(self) -> None:
        """Answer the hits whose commit timeout passed; arm for the next one."""
        self._sweeper = None
        deadlines = self._deadlines
        now = self._loop.time() if self._loop is not None else 0.0
        while deadlines:
            at, fut = deadlines[0]
            if not fut.done():
                if at > now:
                    break
                _expire(fut)
            deadlines.popleft()
        if deadlines and self._loop is not None:
            self._sweeper = self._loop.call_at(deadlines[0][0], self._sweep)


def _expire(fut: asyncio.Future[Outcome]) -> None:
    if not fut.done():
        fut.set_result(Unrecorded.COMMIT_TIMEOUT)
        metrics.UNRECORDED_TIMEOUT.inc()
