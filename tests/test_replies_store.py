"""The reply tables (0010): mailboxes and their lease, reminders, the new
message_stats columns; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert

from mailbeacon.store import mailboxes as store
from mailbeacon.store import make_engine, upgrade
from mailbeacon.store.schema import events, messages, metadata


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from mailbeacon.config import normalise_db_url

    eng = make_engine(normalise_db_url(db_url))
    upgrade(eng)
    yield eng
    eng.dispose()


# SQLite cannot reflect the lower(recipient) index; alembic warns and skips it.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::sqlalchemy.exc.SAWarning")
def test_migrations_make_the_schema_the_code_declares(engine: Engine) -> None:
    names = {"mailboxes", "reminders", "reminder_defaults", "message_stats"}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diff if any(n in repr(d) for n in names)]
    assert ours == []


def test_upsert_replaces_the_password_and_resets_the_state(engine: Engine) -> None:
    mid, created = store.upsert(engine, "ana@example.com", "imap://ana@h:143", "sealed1")
    assert created
    store.failed(engine, mid, "login failed", next_try_at=100.0, now=50.0)
    box = store.get(engine, "ana@example.com")
    assert box is not None and box.state == "failing" and box.failures == 1
    again, created = store.upsert(engine, "ana@example.com", "imap://ana@h:993", "sealed2")
    box = store.get(engine, "ana@example.com")
    assert again == mid and not created
    assert box is not None and (box.state, box.failures, box.imap_secret) == ("new", 0, "sealed2")
    assert store.remove(engine, "ana@example.com") and not store.remove(engine, "ana@example.com")


def test_one_node_holds_a_lease_until_it_expires(engine: Engine) -> None:
    mid, _ = store.upsert(engine, "ana@example.com", "imap://ana@h:143", None)
    assert store.take_lease(engine, mid, "node-a", 60, now=1000.0)
    assert not store.take_lease(engine, mid, "node-b", 60, now=1030.0)
    assert store.take_lease(engine, mid, "node-a", 60, now=1030.0)  # renewal
    # A checkpoint only lands for the holder.
    assert not store.checked(engine, mid, "node-b", uidvalidity=7, last_uid=9, now=1031.0)
    assert store.checked(engine, mid, "node-a", uidvalidity=7, last_uid=9, now=1031.0)
    assert store.take_lease(engine, mid, "node-b", 60, now=1091.0)  # a-'s lapsed
    assert not store.take_lease(engine, mid, "node-a", 60, now=1092.0)
    store.release_lease(engine, mid, "node-b")
    assert store.take_lease(engine, mid, "node-a", 60, now=1093.0)
    box = store.get(engine, "ana@example.com")
    assert box is not None and (box.uidvalidity, box.last_uid, box.state) == (7, 9, "ok")


def test_matching_lookups(engine: Engine) -> None:
    with engine.begin() as conn:
        for i, (rcpt, mid_header, sent) in enumerate(
            [
                ("Ana@Example.com", "<x@h>", 100.0),
                ("bo@example.com", "<x@h>", 100.0),
                ("ana@example.com", "<y@h>", 10.0),
            ]
        ):
            conn.execute(
                insert(messages).values(
                    id=i + 1, recipient=rcpt, subject="Hi", sent_at=sent, created_at=sent,
                    message_id_header=mid_header,
                )
            )  # fmt: skip
        conn.execute(
            insert(events).values(
                message_id=1, kind="reply", at=1.0, method="IMAP", ip="", ip_hash="",
                user_agent="", headers=json.dumps({"from": "ana@example.com", "reply_id": "h1"}),
            )
        )  # fmt: skip
    with engine.connect() as conn:
        assert [t.id for t in store.by_message_id_header(conn, ["<x@h>", "<z@h>"])] == [1, 2]
        assert [t.id for t in store.by_recipient(conn, ["ANA@example.com"], since=50.0)] == [1]
        assert [t.recipient for t in store.sent_since(conn, 50.0)] == [
            "ana@example.com",
            "bo@example.com",
        ]
        assert store.recorded_replies(conn, [1, 2]) == {(1, "h1")}
