"""Ids are never reused: an erased message's tokens can never count on someone else's."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from mailbeacon.store import make_engine, privacy, rollups, upgrade
from mailbeacon.store.messages import insert_message
from tests.helpers import Server, cli, recorded, rows, start_server


def test_erasing_the_newest_message_never_lends_its_id_to_the_next(server: Server) -> None:
    old = server.message(recipient="gone@example.com", links=["https://example.com/a"])
    assert httpx.get(old["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
    campaign = server.api("POST", "/api/v1/campaigns", json={"name": "spring"}).json()
    r = server.api("DELETE", "/api/v1/recipients/gone@example.com/erase")
    assert r.status_code == 200 and r.json()["messages"] == 1

    new = server.message(recipient="someone@example.com", links=["https://example.com/b"])
    assert new["id"] > old["id"]
    r = httpx.get(old["open_url"], headers={"User-Agent": "erased-open"})
    assert r.status_code == 200 and r.headers["x-mailbeacon-recorded"] == "no; reason=opted_out"
    c = httpx.get(old["links"][0]["tracked_url"], headers={"User-Agent": "erased-click"})
    assert c.status_code == 302 and c.headers["x-mailbeacon-recorded"] == "no; reason=opted_out"
    assert server.events(new["id"]) == []
    assert rows(server.db, "SELECT COUNT(*) FROM events") == [(0,)]

    # Events and campaigns: the newest row deleted, the next one gets a fresh id.
    assert httpx.get(new["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
    [(first_event,)] = rows(server.db, "SELECT id FROM events")
    erased = server.api("DELETE", "/api/v1/recipients/someone@example.com/erase").json()
    assert erased["events"] == 1
    third = server.message(recipient="third@example.com")
    assert httpx.get(third["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
    [(second_event,)] = rows(server.db, "SELECT id FROM events")
    assert second_event > first_event

    # No route deletes a campaign; the store must not reuse its id if one goes.
    engine = make_engine(server.db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM campaigns WHERE id = :id"), {"id": campaign["id"]})
    engine.dispose()
    again = server.api("POST", "/api/v1/campaigns", json={"name": "summer"}).json()
    assert again["id"] > campaign["id"]


def test_migration_gives_an_existing_sqlite_database_ids_that_are_never_reused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0005")  # the schema before ids were protected
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")  # as mailbeacon's own connections have it
        db.execute("INSERT INTO campaigns (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0)")
        db.executemany(
            "INSERT INTO messages (id, campaign_id, recipient, created_at) VALUES (?, ?, ?, 0)",
            [(1, 1, "a@example.com"), (2, 2, "b@example.com"), (3, 2, "c@example.com")],
        )
        db.executemany(
            "INSERT INTO message_stats (message_id, campaign_id) VALUES (?, ?)",
            [(1, 1), (2, 2), (3, 2)],
        )
        db.executemany(
            "INSERT INTO links (message_id, position, url) VALUES (?, ?, ?)",
            [(1, 1, "https://example.com/1"), (2, 1, "https://example.com/2")],
        )
        db.execute(
            "INSERT INTO events (id, message_id, kind, at, method, ip, ip_hash, user_agent, "
            "headers) VALUES (7, 1, 'open', 0, 'GET', '', '', 'ua', '{}')"
        )
        # Message 3 and event 9 were erased before the migration; only the
        # outbox still remembers them.
        db.execute(
            "INSERT INTO outbox (channel, event_type, event_id, message_id, created_at, next_at) "
            "VALUES ('webhook', 'message.open', 9, 3, 0, 0)"
        )
        db.execute("DELETE FROM message_stats WHERE message_id = 3")
        db.execute("DELETE FROM messages WHERE id = 3")
        # Campaign 2 deleted: messages forget it (SET NULL), its rollups do not.
        db.execute("DELETE FROM campaigns WHERE id = 2")
    upgrade(engine)

    with sqlite3.connect(path) as db:
        # Nothing lost to the rebuild: links (ON DELETE CASCADE) and campaign
        # references (ON DELETE SET NULL) are as they were.
        assert db.execute("SELECT message_id, position FROM links ORDER BY 1").fetchall() == [
            (1, 1),
            (2, 1),
        ]
        assert db.execute("SELECT id, campaign_id FROM messages ORDER BY id").fetchall() == [
            (1, 1),
            (2, None),
        ]
        assert db.execute("SELECT id, message_id FROM events").fetchall() == [(7, 1)]
        db.execute("INSERT INTO messages (recipient, created_at) VALUES ('d@example.com', 0)")
        db.execute("INSERT INTO campaigns (name, created_at) VALUES ('c', 0)")
        db.execute(
            "INSERT INTO events (message_id, kind, at, method, ip, ip_hash, user_agent, headers) "
            "VALUES (1, 'open', 0, 'GET', '', '', 'ua', '{}')"
        )
        assert db.execute("SELECT MAX(id) FROM messages").fetchone() == (4,)  # not 3
        assert db.execute("SELECT MAX(id) FROM campaigns").fetchone() == (3,)  # not 2
        assert db.execute("SELECT MAX(id) FROM events").fetchone() == (10,)  # not 8 or 9
        assert db.execute("PRAGMA foreign_keys").fetchone() == (0,)  # a plain connection
        # Indexes survive the rebuild, the expression one (0008) included.
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {
            "ix_messages_campaign",
            "ix_messages_recipient_lower",
            "ix_events_message",
            "ix_events_at",
        } <= names
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on for the app
    engine.dispose()


@pytest.mark.process
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_hit_on_another_node_right_after_an_erase_records_no_orphan(
    db_url: str, tmp_path: Path
) -> None:
    a = start_server(db_url, tmp_path)
    b = start_server(db_url, tmp_path, key=a.key)
    try:
        msg = a.message(recipient="gone@example.com", links=["https://example.com/a"])
        path = msg["open_url"].removeprefix(a.url)
        click = msg["links"][0]["tracked_url"].removeprefix(a.url)
        # Node B now holds the message's facts in its cache (10 s).
        assert recorded(httpx.get(b.url + path)) == "yes"
        erased = a.api("DELETE", "/api/v1/recipients/gone@example.com/erase").json()
        assert erased["events"] == 1
        # B has not refreshed yet: it classifies from its cache, the writer
        # must still find the message gone.
        for url in (b.url + path, b.url + click):
            r = httpx.get(url, headers={"User-Agent": "after-erase"})
            assert r.headers["x-mailbeacon-recorded"] == "no; reason=opted_out"
        assert rows(db_url, "SELECT COUNT(*) FROM events WHERE message_id = ?", (msg["id"],)) == [
            (0,)
        ]
    finally:
        a.stop()
        b.stop()


@pytest.mark.process
def test_a_cli_erase_while_a_server_caches_the_message_records_no_orphan(
    sqlite_url: str, tmp_path: Path
) -> None:
    srv = start_server(sqlite_url, tmp_path)
    try:
        msg = srv.message(recipient="gone@example.com")
        assert recorded(httpx.get(msg["open_url"])) == "yes"  # cached by the server
        cli("recipient", "erase", "gone@example.com", db=sqlite_url)
        assert recorded(httpx.get(msg["open_url"], headers={"User-Agent": "after-erase"})) == "no"
        assert rows(sqlite_url, "SELECT COUNT(*) FROM events") == [(0,)]
    finally:
        srv.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_erase_racing_a_batch_leaves_no_orphan(db_url: str) -> None:
    """The writer's first step locks the batch's message_stats rows; an erase
    that starts meanwhile must wait for the batch and then delete its events."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        mid, _ = insert_message(
            conn,
            recipient="gone@example.com",
            subject=None,
            campaign_id=None,
            variant=None,
            sent_at=None,
        )
    raw = engine.raw_connection()
    cur = raw.cursor()
    assert set(rollups.lock_state(cur, "%s", True, [mid])) == {mid}  # as Recorder._insert
    eraser = threading.Thread(target=privacy.recipient_erase, args=(engine, "gone@example.com"))
    eraser.start()
    deadline = time.monotonic() + 30
    while not rows(
        db_url,
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()",
    ):
        assert time.monotonic() < deadline, "the erase never waited for the batch"
        time.sleep(0.05)
    cur.execute(
        "INSERT INTO events (message_id, kind, at, method, ip, ip_hash, user_agent, headers) "
        "VALUES (%s, 'open', 0, 'GET', '', '', 'in-flight', '{}')",
        (mid,),
    )
    raw.commit()
    raw.close()
    eraser.join(30)
    assert rows(db_url, "SELECT COUNT(*) FROM events") == [(0,)]
    engine.dispose()
