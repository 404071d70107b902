"""The recorder's hand-off between the event loop and the writer thread.

``add()`` runs on the event loop, the writer swaps the pending list under a
lock on its own thread. A tiny switch interval makes the interpreter change
threads every few bytecodes, so any access to shared state outside the lock
shows up as a hit acknowledged but never written, or never written at all.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mailbeacon.hits.recorder import Recorder
from mailbeacon.model import Event, Kind, Unrecorded
from mailbeacon.store import make_engine

HITS = 20_000


class StubbedRecorder(Recorder):
    """The real hand-off and group commit; the store write only notes what it got."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.written: list[int] = []

    def _transaction(self, work: Callable[[Any], object]) -> BaseException | None:
        work(None)  # no store: a batch "commits" at once
        return None

    def _insert(self, cur: Any, batch: Sequence[Event], gone: list[Event]) -> None:
        self.written.extend(e.message_id for e in batch)  # only the writer thread runs this


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # 10 us: switch threads as often as the interpreter can
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _hit(n: int) -> Event:
    return Event(
        message_id=n, kind=Kind.OPEN, at=0.0, method="GET", ip="192.0.2.1", user_agent="race"
    )


def test_every_hit_written_and_none_acknowledged_unwritten(
    tmp_path: Path, tiny_switch_interval: None
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")  # _write never touches it
    rec = StubbedRecorder(engine, queue_max=10 * HITS, commit_timeout=2.0)

    async def run() -> list[bool]:
        rec.start()
        results: list[bool] = []
        # Waves of concurrent adds, so the writer swaps the list while the
        # loop is still appending to it.
        for start in range(0, HITS, 1000):
            results += await asyncio.gather(*(rec.add(_hit(n)) for n in range(start, start + 1000)))
        return results

    results = asyncio.run(run())
    rec.stop()
    written = set(rec.written)
    acked = {n for n, ok in enumerate(results) if ok}
    lost = acked - written
    assert not lost, f"{len(lost)} hits acknowledged but never written"
    assert len(rec.written) == len(written), "a hit was written twice"
    assert written == set(range(HITS)), f"{HITS - len(written)} hits never written"
    assert len(acked) == HITS, f"{HITS - len(acked)} hits answered unrecorded with the store up"


class SlowRecorder(StubbedRecorder):
    """Commits only when the test lets it: a store that hangs mid-write."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)
        self.release = threading.Event()

    def _transaction(self, work: Callable[[Any], object]) -> BaseException | None:
        self.release.wait(30)
        return super()._transaction(work)


def test_commit_timeout_answers_each_hit_when_its_own_time_is_up(tmp_path: Path) -> None:
    """A hit waits at most commit_timeout from when *it* came, whatever came
    before it; once the store writes again, later hits are answered committed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    rec = SlowRecorder(engine, commit_timeout=0.3)

    async def run() -> tuple[list[Unrecorded | None], list[float], Unrecorded | None]:
        rec.start()
        loop = asyncio.get_running_loop()
        began = loop.time()
        waited: list[float] = []

        async def timed(n: int, delay: float) -> Unrecorded | None:
            await asyncio.sleep(delay)
            sent = loop.time()
            why = await rec.record(_hit(n))
            waited.append(loop.time() - sent)
            return why

        # Two waves 0.15 s apart while the store hangs: each is answered
        # "commit_timeout" about 0.3 s after it came, not with the first wave.
        outcomes = await asyncio.gather(*(timed(n, 0.15 * (n % 2)) for n in range(10)))
        assert loop.time() - began < 5
        rec.release.set()
        return list(outcomes), waited, await rec.record(_hit(99))

    outcomes, waited, after = asyncio.run(run())
    rec.stop()
    assert outcomes == [Unrecorded.COMMIT_TIMEOUT] * 10
    assert all(0.25 <= w < 2.0 for w in waited), waited
    assert after is None  # the store is back: committed and answered so
