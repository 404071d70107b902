"""The writer's hot insert (store/events.insert_rows): every row of a batch
gets the id of its own row, whatever the batch's size, on both stores."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from mailbeacon.messages import create_message
from mailbeacon.model import Event, Kind
from mailbeacon.store import events as event_store
from mailbeacon.store import make_engine, upgrade
from mailbeacon.tokens import Signer


# SQLite writes up to ROWS_PER_INSERT rows per statement: one short, one
# exactly full, one over it, several statements with a short last one.
@pytest.mark.parametrize("size", [1, 63, 64, 65, 200])
def test_each_row_gets_its_own_id(db_url: str, size: int) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sqlite = db_url.startswith("sqlite")
    with engine.begin() as conn:
        msg = create_message(conn, Signer({1: b"k" * 32}), "http://t", recipient="a@example.org")
    now = time.time()
    batch = [
        Event(
            message_id=msg["id"],
            kind=Kind.OPEN if i % 3 else Kind.CLICK,
            at=now + i,
            method="GET",
            ip="198.51.100.0",
            user_agent=f"agent {i}",
            headers={},
            link_position=None if i % 3 else i,
            url=None if i % 3 else f"https://e.org/{i}",
        )  # fmt: skip
        for i in range(size)
    ]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        rows = [event_store.row(event_store.fit(e)) for e in batch]
        ids = event_store.insert_rows(cur, event_store.insert_sql(engine), rows, sqlite)
        raw.commit()
    finally:
        raw.close()
    assert len(set(ids)) == size
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, user_agent FROM events")).all())
        nulls = conn.execute(text("SELECT count(*) FROM events WHERE url IS NULL")).scalar()
    assert {i: stored[i] for i in ids} == {i: f"agent {n}" for n, i in enumerate(ids)}
    assert nulls == sum(1 for e in batch if e.url is None)  # None is stored as NULL
    engine.dispose()
