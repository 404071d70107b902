"""A batch that fails for its data never stops the writer: the rows at fault go
to dead_letters, the rest is written, and recording goes on."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine

from mailbeacon import metrics
from mailbeacon.hits.recorder import Recorder
from mailbeacon.model import Event, Kind, Unrecorded
from mailbeacon.store import make_engine, upgrade
from mailbeacon.store.messages import insert_message
from tests.helpers import rows

MID = 1  # the one message of a fresh store


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        mid, _ = insert_message(
            conn,
            recipient="r@example.com",
            subject=None,
            campaign_id=None,
            variant=None,
            sent_at=None,
        )
    assert mid == MID
    yield engine


def _hit(ua: str, **kw: Any) -> Event:
    fields: dict[str, Any] = dict(
        message_id=MID,
        kind=Kind.OPEN,
        at=1.0e9,
        method="GET",
        ip="203.0.113.9",
        ip_stored="203.0.113.0/24",
        ip_hash="h" * 32,
        user_agent=ua,
    )
    fields.update(kw)
    return Event(**fields)


def _dead_letters_total() -> float:
    m = re.search(r"^mailbeacon_dead_letters_total ([\d.e+]+)$", metrics.render().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def _refuse_marked(_cur: Any, _m: str, _pg: bool, batch: Sequence[Event], _c: Any) -> None:
    if any(e.user_agent == "refused-by-hook" for e in batch):
        raise ValueError("the outbox cannot encode this event")


def test_refused_rows_are_dead_lettered_and_every_other_hit_written(
    db_url: str, engine: Engine
) -> None:
    rec = Recorder(engine, commit_timeout=60)
    rec.tx_hooks.append(_refuse_marked)
    good = [_hit(f"good/{i}") for i in range(40)]
    # NOT NULL violated in the store itself (IntegrityError on both drivers),
    # and a hook that raises for its data.
    bad = [_hit("no-method", method=None), _hit("refused-by-hook")]
    hits = good[:20] + bad[:1] + good[20:30] + bad[1:] + good[30:]
    before = _dead_letters_total()

    async def run() -> tuple[list[Any], Any]:
        rec.start()
        outcomes = await asyncio.gather(*(rec.record(e) for e in hits))
        after = await rec.record(_hit("after"))  # the writer is not stuck
        return outcomes, after

    outcomes, after = asyncio.run(run())
    rec.stop()
    by_ua = {e.user_agent: o for e, o in zip(hits, outcomes, strict=True)}
    assert {ua: o for ua, o in by_ua.items() if o is not None} == {
        "no-method": Unrecorded.DEAD_LETTER,
        "refused-by-hook": Unrecorded.DEAD_LETTER,
    }
    assert after is None and not rec.down
    stored = {ua for (ua,) in rows(db_url, "SELECT user_agent FROM events")}
    assert stored == {e.user_agent for e in good} | {"after"}

    letters = rows(db_url, "SELECT message_id, payload, error FROM dead_letters ORDER BY id")
    assert len(letters) == 2
    kept = {json.loads(p)["user_agent"]: (mid, json.loads(p), err) for mid, p, err in letters}
    mid, payload, error = kept["no-method"]
    assert mid == MID and payload["method"] is None
    assert "null" in error.lower() and "method" in error  # the store's own words
    assert payload["ip"] == "203.0.113.0/24"  # the stored network, never the full address
    assert "203.0.113.9" not in json.dumps(payload)
    assert "ValueError: the outbox cannot encode" in kept["refused-by-hook"][2]
    assert _dead_letters_total() - before == 2


def test_values_no_driver_can_encode_are_dead_lettered_as_escapes(
    db_url: str, engine: Engine
) -> None:
    """A reason with a lone surrogate cannot be encoded for the events row, an
    id past BIGINT cannot be bound: both are kept, as ASCII JSON."""
    rec = Recorder(engine, commit_timeout=60)

    async def run() -> list[Any]:
        rec.start()
        return list(
            await asyncio.gather(
                rec.record(_hit("odd-reason \u4e2d", reasons=["ua:x\udcff\x00"])),
                rec.record(_hit("huge-id", message_id=2**64)),
                rec.record(_hit("fine")),
            )
        )

    odd, huge, fine = asyncio.run(run())
    rec.stop()
    assert odd == Unrecorded.DEAD_LETTER and fine is None
    # SQLite cannot even bind the id (dead letter); PostgreSQL finds no such
    # message (not recorded either way).
    assert huge in (Unrecorded.DEAD_LETTER, Unrecorded.OPTED_OUT)
    letters = rows(db_url, "SELECT message_id, payload FROM dead_letters ORDER BY id")
    assert all(p.isascii() for _, p in letters)
    kept = {json.loads(p)["user_agent"]: (mid, json.loads(p)) for mid, p in letters}
    assert kept["odd-reason \u4e2d"][1]["reasons"] == ["ua:x\udcff\x00"]
    if huge == Unrecorded.DEAD_LETTER:
        assert kept["huge-id"][0] is None and kept["huge-id"][1]["message_id"] == 2**64
    assert rows(db_url, "SELECT user_agent FROM events") == [("fine",)]


def test_shutdown_writes_every_queued_hit_around_a_refused_one(db_url: str, engine: Engine) -> None:
    rec = Recorder(engine, commit_timeout=60)
    hits = [_hit(f"queued/{i}") for i in range(200)]
    hits[100] = _hit("no-method", method=None)

    async def run() -> list[Any]:
        rec.start()
        tasks = [asyncio.ensure_future(rec.record(e)) for e in hits]
        await asyncio.sleep(0)  # one loop turn: every task is queued and waiting
        await asyncio.to_thread(rec.stop)  # shutdown with all of them still queued
        late = await rec.record(_hit("late"))
        return [*await asyncio.gather(*tasks), late]

    outcomes = asyncio.run(run())
    assert outcomes[100] == Unrecorded.DEAD_LETTER and outcomes[-1] == Unrecorded.SHUTTING_DOWN
    assert [o for i, o in enumerate(outcomes[:-1]) if i != 100] == [None] * 199
    stored = rows(db_url, "SELECT COUNT(*) FROM events")
    assert stored == [(199,)]
