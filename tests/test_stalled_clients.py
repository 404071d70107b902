"""Clients that stop reading a streamed answer must hold nothing the server
needs: no pooled database connection, no read transaction."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text

from mailbeacon.config import normalise_db_url
from mailbeacon.reports import export as exports
from mailbeacon.store import db, make_engine, upgrade
from mailbeacon.store import messages as store
from mailbeacon.store.schema import events
from tests.helpers import Server

STALLED = 16  # more than either store's pool (SQLite 5 + 10 overflow, PostgreSQL 5 + 5)
EVENTS = 30_000  # ~10 MB of CSV: far more than the socket buffers take
PROMPT = 10.0  # the pool's wait is 30 s; a held pool shows as a timeout here


def _fill(db: str, message_ids: list[int], n: int) -> None:
    engine = make_engine(normalise_db_url(db))
    now = time.time()
    rows = [
        {
            **_event_row(message_ids[i % len(message_ids)]),
            "at": now - n + i,
            "user_agent": "Mozilla/5.0 (stalled-export test) " + "x" * 200,
            "label": "human_direct",
            "reasons": '["direct"]',
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(events), rows)
    engine.dispose()


def _stall(server: Server, campaign_id: int) -> socket.socket:
    """Start a download, read its first bytes, then stop reading (and keep it open)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # buffer little on our side
    sock.settimeout(PROMPT)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        b"GET /api/v1/campaigns/%d/export?what=events&format=csv HTTP/1.1\r\nHost: t\r\n"
        b"Authorization: Bearer %s\r\n\r\n" % (campaign_id, server.key.encode())
    )
    got = b""
    while b"\r\n\r\n" not in got or len(got) < 4096:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            raise AssertionError(
                f"a download did not start within {PROMPT:g} s: the earlier, stalled ones "
                "hold what it needs"
            ) from None
        assert chunk, got[:300]
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:300]
    return sock


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    out = call()
    return out, time.monotonic() - started


def test_stalled_export_downloads_hold_no_connection(server: Server) -> None:
    cid = server.api("POST", "/api/v1/campaigns", json={"name": "big"}).json()["id"]
    ids = [server.message(campaign_id=cid)["id"] for _ in range(10)]
    _fill(server.db, ids, EVENTS)
    stalled = [_stall(server, cid) for _ in range(STALLED)]
    try:
        with httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.key}"},
            timeout=PROMPT,
        ) as c:
            report, took = _timed(lambda: c.get(f"/api/v1/campaigns/{cid}/report"))
            assert report.status_code == 200 and took < PROMPT
            fresh, took = _timed(lambda: c.post("/api/v1/messages", json={"recipient": "n@x.org"}))
            assert fresh.status_code == 201 and took < PROMPT
            # A first pixel of a new message reads its facts from the store.
            pixel, took = _timed(lambda: httpx.get(fresh.json()["open_url"], timeout=PROMPT))
            assert pixel.headers["x-mailbeacon-recorded"] == "yes" and took < PROMPT
            page, took = _timed(lambda: c.get("/login"))
            assert page.status_code == 200 and took < PROMPT
        if server.db.startswith("sqlite:///"):
            # No reader pins the WAL: a full checkpoint can reset it right now.
            with sqlite3.connect(server.db[len("sqlite:///") :], timeout=10) as conn:
                busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0, "a stalled download holds a read transaction"
    finally:
        for sock in stalled:
            sock.close()


# Events per message of the exported campaign; another campaign's messages sit
# between them. With 3 rows a chunk, every boundary case is in here: a chunk
# ending inside a message, exactly at its end, on an empty message, at the end.
NO: dict[str, Any] = {"subject": None, "variant": None, "sent_at": None}
LAYOUTS = [[], [0], [3], [2], [7, 1], [2, 5, 0, 7], [3, 3, 1], [0, 0, 4]]


@pytest.mark.parametrize("layout", LAYOUTS, ids=[str(x) for x in LAYOUTS])
def test_keyset_chunks_give_every_row_once_in_order(
    db_url: str, monkeypatch: pytest.MonkeyPatch, layout: list[int]
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 3)
    engine = make_engine(normalise_db_url(db_url))
    upgrade(engine)
    want: list[int] = []
    with engine.begin() as conn:
        cid = int(store.create_campaign(conn, "chunked")["id"])
        other = int(store.create_campaign(conn, "other")["id"])
        for n in layout:
            mid, _ = store.insert_message(conn, recipient="a@example.com", campaign_id=cid, **NO)
            noise, _ = store.insert_message(conn, recipient="b@x.com", campaign_id=other, **NO)
            for target, count in ((mid, n), (noise, 2)):
                for _ in range(count):
                    row = {**_event_row(target), "at": time.time()}
                    eid = conn.execute(insert(events).values(row)).inserted_primary_key[0]
                    if target == mid:
                        want.append(int(eid))
    got = [r["id"] for r in exports.rows(engine, cid, "events")]
    assert got == want  # grouped by message (in id order), each message's events in order
    people = [r["recipient"] for r in exports.rows(engine, cid, "recipients")]
    assert people == ["a@example.com"] * len(layout)
    engine.dispose()


def _event_row(message_id: int) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "kind": "open",
        "method": "GET",
        "ip": "203.0.113.0",
        "ip_hash": "0" * 32,
        "user_agent": "test",
        "headers": "{}",
    }


def test_the_sqlite_wal_is_cut_back_after_a_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_WAL_LIMIT", 1 << 20)
    path = tmp_path / "wal.db"
    engine = db.make_engine(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (b BLOB)"))
    with engine.begin() as conn:  # 5 MB in one go: past the 4 MB auto-checkpoint
        for _ in range(80):
            conn.execute(text("INSERT INTO t VALUES (randomblob(65536))"))
    assert wal.stat().st_size > 4 << 20
    with engine.begin() as conn:  # the next writer restarts the checkpointed log
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert wal.stat().st_size <= 1 << 20
    engine.dispose()
