"""The relay's tables: senders and the outgoing queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from mailbeacon.store import make_engine, outgoing, upgrade
from mailbeacon.store import senders as store
from mailbeacon.store.db import write_cursor
from mailbeacon.store.messages import ID_GAP, insert_message, skip_unsure_ids
from mailbeacon.store.schema import messages, relay_copies, relay_submissions


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from mailbeacon.config import normalise_db_url

    eng = make_engine(normalise_db_url(db_url))
    upgrade(eng)
    yield eng
    eng.dispose()


def _sender(engine: Engine, email: str = "ana@example.com") -> int:
    return store.create(
        engine, email=email, password_hash="x", upstream="smtp://h:25", upstream_secret=None
    )


def _queue(engine: Engine, sid: int, n: int, pending: bool = True) -> int:
    outcomes = [
        outgoing.Outcome(f"r{i}@example.org", None, "pending" if pending else "sent", at=1.0)
        for i in range(n)
    ]
    return outgoing.record(
        engine,
        sender_id=sid,
        kind="mail",
        mail_from="ana@example.com",
        mail_options=("BODY=8BITMIME",),
        track="opens",
        message_id_header="<a@b>",
        headers=b"Subject: hi\r\n\r\n",
        data=b"Subject: hi\r\n\r\nbody\r\n",
        outcomes=outcomes,
        next_at=0.0,
    )


def test_sender_rows_round_trip(engine: Engine) -> None:
    sid = _sender(engine)
    with pytest.raises(store.SenderExists):
        _sender(engine)
    assert store.change(engine, "ana@example.com", also="a2@example.com", track="all")
    got = store.by_id(engine, sid)
    assert got is not None and got.addresses == ("ana@example.com", "a2@example.com")
    assert got.track == "all" and not store.has_secrets(engine)
    assert (
        store.remove(engine, "ana@example.com")
        and store.by_email(engine, "ana@example.com") is None
    )


def test_a_fully_sent_submission_keeps_no_data(engine: Engine) -> None:
    sub = _queue(engine, _sender(engine), 2, pending=False)
    got = outgoing.submission(engine, sub)
    assert got is not None and got.data is None and got.mail_options == ("BODY=8BITMIME",)
    assert outgoing.claim(engine, 10) == []


def test_claim_finish_and_data_dropped_when_done(engine: Engine) -> None:
    sid = _sender(engine)
    sub = _queue(engine, sid, 2)
    claimed = outgoing.claim(engine, 10)
    assert [c.attempts for c in claimed] == [1, 1]
    assert outgoing.claim(engine, 10) == []  # leased
    outgoing.finish(engine, claimed[0], status="sent", code=250, error=None, at=5.0)
    got = outgoing.submission(engine, sub)
    assert got is not None and got.data is not None  # one copy still needs it
    outgoing.finish(engine, claimed[1], status="pending", code=451, error="later", next_at=0.0)
    again = outgoing.claim(engine, 10)
    assert [c.id for c in again] == [claimed[1].id] and again[0].attempts == 2
    outgoing.finish(engine, again[0], status="failed", code=550, error="no such user")
    got = outgoing.submission(engine, sub)
    assert got is not None and got.data is None
    assert outgoing.copies_since(engine, sid, 0) == 2
    assert {c["status"] for c in outgoing.copies(engine)} == {"sent", "failed"}


def test_the_queue_view_has_subjects_and_counts_what_waits(engine: Engine) -> None:
    """The dashboard's queue: each copy with its message's subject (a bounce
    report has no message), and per sender how many copies still wait."""
    ana, bea = _sender(engine), _sender(engine, "bea@example.com")
    with engine.begin() as conn:
        mid, _ = insert_message(
            conn, recipient="r@example.org", subject="Our proposal", campaign_id=None,
            variant=None, sent_at=None,
        )  # fmt: skip
    outcomes = [outgoing.Outcome("r@example.org", mid, "pending")]
    outgoing.record(
        engine, sender_id=ana, kind="mail", mail_from="ana@example.com", mail_options=(),
        track="opens", message_id_header="<a@b>", headers=b"", data=b"x", outcomes=outcomes,
        next_at=0.0,
    )  # fmt: skip
    _queue(engine, ana, 2)  # no message: as a bounce report
    _queue(engine, bea, 1, pending=False)
    rows = outgoing.copies(engine, sender_id=ana)
    assert [(r["recipient"], r["subject"]) for r in rows] == [
        ("r1@example.org", None), ("r0@example.org", None), ("r@example.org", "Our proposal"),
    ]  # fmt: skip
    assert len(outgoing.copies(engine)) == 4
    assert outgoing.waiting_by_sender(engine) == {ana: 3}


def test_a_lease_frees_copies_of_a_dead_node_and_renewal_holds_them(engine: Engine) -> None:
    _queue(engine, _sender(engine), 2)
    now = time.time()
    first, second = outgoing.claim(engine, 10, now=now, lease=90)
    assert outgoing.claim(engine, 10, now=now + 89) == []  # still the sending node's
    outgoing.finish(engine, first, status="sent", code=250, error=None, at=now)
    # The node still sending renews; a finished copy is left alone.
    assert outgoing.extend_lease(engine, [first.id, second.id], 90, now=now + 60) == 1
    assert outgoing.claim(engine, 10, now=now + 149) == []
    # It died: one lease after its last renewal another pass takes the copy.
    (again,) = outgoing.claim(engine, 10, now=now + 151)
    assert again.id == second.id and again.attempts == 2


def test_removing_a_sender_drops_its_queue(engine: Engine) -> None:
    _queue(engine, _sender(engine), 1)
    store.remove(engine, "ana@example.com")
    with engine.connect() as conn:
        assert conn.execute(select(relay_copies)).all() == []
        assert conn.execute(select(relay_submissions)).all() == []


def test_message_id_header_column_exists(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(select(messages.c.message_id_header)).all()


def test_concurrent_claims_never_share_a_copy(db_url: str, engine: Engine) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several nodes share a queue only on PostgreSQL")
    sid = _sender(engine)
    for _ in range(20):
        _queue(engine, sid, 10)
    got: list[list[int]] = []
    barrier = threading.Barrier(4)

    def node() -> None:
        mine: list[int] = []
        barrier.wait()
        while batch := outgoing.claim(engine, 7, now=time.time()):
            mine += [c.id for c in batch]
        got.append(mine)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [i for mine in got for i in mine]
    assert len(every) == 200 and len(set(every)) == 200


def test_the_queue_view_pages_back_and_filters_by_state(engine: Engine) -> None:
    """The dashboard's "Older" pages (``before``: the last id shown) and its
    state filter, which must pick exactly the copies the page words so."""
    sid = _sender(engine)
    outcomes = [
        outgoing.Outcome("retrying@example.org", None, "pending"),
        outgoing.Outcome("queued@example.org", None, "pending"),
        outgoing.Outcome("sent@example.org", None, "sent", at=1.0, code=250),
        outgoing.Outcome("bounced@example.org", None, "failed", code=550, error="no such user"),
        outgoing.Outcome("given-up@example.org", None, "failed", code=451, error="later"),
        outgoing.Outcome("gone@example.org", None, "failed", error="submission gone"),
    ]
    outgoing.record(
        engine, sender_id=sid, kind="mail", mail_from="ana@example.com", mail_options=(),
        track="opens", message_id_header="<a@b>", headers=b"", data=b"x", outcomes=outcomes,
        next_at=time.time() + 3600,
    )  # fmt: skip
    (retry,) = outgoing.claim(engine, 1, now=time.time() + 7200)  # the first: "retrying@"
    outgoing.finish(engine, retry, status="pending", code=421, error="busy", next_at=0.0)
    everything = outgoing.copies(engine, limit=100)
    byname = {r["recipient"].split("@")[0]: r["id"] for r in everything}
    for state in outgoing.STATES:
        got = outgoing.copies(engine, state=state, sender_id=sid)
        assert got and {outgoing.state_of(r) for r in got} == {state}
    picked = [r["id"] for s in outgoing.STATES for r in outgoing.copies(engine, state=s)]
    assert sorted(picked) == sorted(byname.values())
    assert [r["recipient"] for r in outgoing.copies(engine, state="retrying")] == [
        "retrying@example.org"
    ]

    pages, before = [], None
    while page := outgoing.copies(engine, sender_id=sid, limit=4, before=before):
        pages.append([r["id"] for r in page])
        before = page[-1]["id"]
    assert [len(p) for p in pages] == [4, 2]
    assert sum(pages, []) == [r["id"] for r in everything]  # newest first, none twice
    older = outgoing.copies(engine, state="given up", before=byname["gone"])
    assert [r["recipient"] for r in older] == ["given-up@example.org"]


def test_copies_are_created_in_order_with_their_campaign_and_links(engine: Engine) -> None:
    """outgoing.create_copies (the relay's first commit, on the driver's cursor)."""
    from mailbeacon.store.schema import campaigns, links, message_stats

    rcpts = ["b@example.org", "c@example.org", "d@example.org"]
    got = [
        outgoing.create_copies(
            engine,
            rcpts,
            subject="Hi",
            campaign="Spring",
            message_id_header="<m@x>",
            links_of=lambda mid: [(1, f"https://example.com/{mid}"), (2, "https://example.com/b")],
        )  # fmt: skip
        for _ in range(2)
    ]
    (ids, cid), (ids2, cid2) = got
    assert cid == cid2 and ids == sorted(ids) and ids2[0] > ids[-1]
    with engine.connect() as conn:
        assert conn.execute(select(campaigns.c.id, campaigns.c.name)).all() == [(cid, "Spring")]
        rows = conn.execute(
            select(messages.c.id, messages.c.recipient, messages.c.campaign_id,
                   messages.c.subject, messages.c.message_id_header, messages.c.sent_at)
            .order_by(messages.c.id)
        ).all()  # fmt: skip
        want = [(i, r, cid, "Hi", "<m@x>", None) for i, r in zip(ids, rcpts, strict=True)]
        assert rows[:3] == want
        stats = conn.execute(select(message_stats.c.message_id, message_stats.c.campaign_id))
        assert sorted(stats.all()) == [(i, cid) for i in ids + ids2]
        got_links = conn.execute(
            select(links.c.message_id, links.c.position, links.c.url).where(
                links.c.message_id == ids[1]
            )
        ).all()
        assert sorted(got_links) == [
            (ids[1], 1, f"https://example.com/{ids[0]}"), (ids[1], 2, "https://example.com/b")
        ]  # fmt: skip
    assert (
        outgoing.create_copies(
            engine, ["e@example.org"], subject=None, campaign=None, message_id_header="<n@x>"
        )[1]
        is None
    )


def test_the_relays_first_commit_puts_the_connections_own_setting_back(engine: Engine) -> None:
    """create_copies commits without waiting for the disk (SQLite): the pooled
    connection it used is the hit recorder's too, and goes back to the pool
    fsyncing every commit again, also when the transaction failed."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL commits as always")

    def synchronous() -> int:
        raw = engine.raw_connection()
        try:
            return int(raw.cursor().execute("PRAGMA synchronous").fetchone()[0])
        finally:
            raw.close()

    assert synchronous() == 2  # FULL
    with write_cursor(engine, wait_for_disk=False) as cur:
        assert int(cur.execute("PRAGMA synchronous").fetchone()[0]) == 1  # NORMAL
    assert synchronous() == 2
    with pytest.raises(ZeroDivisionError), write_cursor(engine, wait_for_disk=False):
        raise ZeroDivisionError
    assert synchronous() == 2
    ids, _ = outgoing.create_copies(
        engine, ["b@example.org"], subject=None, campaign=None, message_id_header=None
    )
    assert ids and synchronous() == 2


def test_message_ids_skip_ahead_at_each_start_on_sqlite(engine: Engine) -> None:
    """Ids a power failure may have taken back (that commit did not wait for
    the disk) are never handed out again: each node start skips ahead."""

    def new_id() -> int:
        (mid,), _ = outgoing.create_copies(
            engine, ["b@example.org"], subject=None, campaign=None, message_id_header=None
        )
        return mid

    first = new_id()
    skip_unsure_ids(engine)
    second = new_id()
    if engine.dialect.name == "sqlite":
        assert second == first + 1 + ID_GAP
    else:  # there the relay's commit waits for the disk: nothing to skip
        assert second == first + 1
