"""Rollups equal a recount from raw events: after batches, relabels, and with
two writers at once on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from mailbeacon.hits.labeller import apply_relabels
from mailbeacon.hits.recorder import Recorder
from mailbeacon.messages import create_message
from mailbeacon.model import Event, Kind
from mailbeacon.store import make_engine, upgrade
from mailbeacon.store.rollups import CLASS, SEP
from mailbeacon.store.schema import counters
from mailbeacon.tokens import Signer

OPEN = [
    "human_direct",
    "human_via_proxy",
    "machine_prefetch",
    "security_scanner",
    "bot_other",
    "self",
]
CLICK = ["human", "scanner", "bot", "self"]
CLIENTS = ["Outlook", "Gmail", "Apple Mail", None]


def _engine(db_url: str) -> Engine:
    from mailbeacon.config import normalise_db_url

    engine = make_engine(normalise_db_url(db_url))
    upgrade(engine)
    return engine


def _messages(engine: Engine, n: int) -> list[int]:
    signer = Signer({1: b"k" * 32})
    with engine.begin() as conn:
        cid = conn.execute(
            text("INSERT INTO campaigns (name, created_at) VALUES ('c', 0) RETURNING id")
        ).scalar_one()
        return [
            create_message(
                conn,
                signer,
                "http://x",
                recipient=f"r{i}@example.org",
                campaign_id=cid,
                variant="AB"[i % 2],
                sent_at=1_000_000.0,
                links=["https://example.com/a", "https://example.com/b"],
            )["id"]
            for i in range(n)
        ]


def _random_event(rng: random.Random, mids: list[int], t: float) -> Event:
    kind = rng.choice([Kind.OPEN, Kind.CLICK])
    label = rng.choice(OPEN if kind == Kind.OPEN else CLICK)
    return Event(
        message_id=rng.choice(mids),
        kind=kind,
        at=t,
        method="GET",
        ip="192.0.2.1",
        ip_stored="192.0.2.0/24",
        ip_hash="h",
        user_agent="ua",
        label=label,
        link_position=rng.choice([1, 2]) if kind == Kind.CLICK else None,
        client=rng.choice(CLIENTS),
        os="Windows",
        device="desktop",
    )


def _record(engine: Engine, events: list[Event]) -> None:
    async def run() -> None:
        rec = Recorder(engine, commit_timeout=30)
        rec.start()
        # Submitted concurrently, so the writer forms real multi-event batches.
        ok = await asyncio.gather(*(rec.add(e) for e in events))
        assert all(ok)
        await asyncio.to_thread(rec.stop)

    asyncio.run(run())


def _expected(engine: Engine) -> Counter[tuple[str, str]]:
    """What the rollups must say, recounted from raw events by brute force."""
    with engine.connect() as conn:
        evs = conn.execute(
            text(
                "SELECT e.message_id, e.kind, e.label, e.at, e.link_position, "
                "e.client, m.variant FROM events e JOIN messages m "
                "ON m.id = e.message_id"
            )
        ).all()
        n_messages = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        firsts = (
            conn.execute(
                text(
                    "SELECT first_human_open_at FROM message_stats "
                    "WHERE first_human_open_at IS NOT NULL"
                )
            )
            .scalars()
            .all()
        )
    out: Counter[tuple[str, str]] = Counter()
    out[("unique", "messages")] = n_messages
    for first in firsts:  # one per message, in the hour of its first human open
        out[("first_open", str(int(first // 3600)))] += 1
    per_msg: dict[int, Counter[str]] = {}
    variant_of: dict[int, str] = {}
    link_humans: dict[tuple[int, int], int] = Counter()
    for mid, kind, label, at, pos, client, variant in evs:
        cls = CLASS.get(label or "", "u")
        out[("label", f"{kind}:{label}")] += 1
        out[("hour", f"{int(at // 3600)}:{kind[0]}:{cls}")] += 1
        per_msg.setdefault(mid, Counter())[f"{kind}:{cls}"] += 1
        variant_of[mid] = variant
        if kind == "open" and cls == "h" and client:
            out[("client", client)] += 1
        if kind == "click" and pos is not None:
            if cls == "h":
                out[("link", f"{pos}:total")] += 1
                link_humans[(mid, pos)] += 1
            else:
                out[("link", f"{pos}:other")] += 1
    for (_, pos), n in link_humans.items():
        if n:
            out[("link", f"{pos}:unique")] += 1
    for mid, c in per_msg.items():
        opened = c["open:h"] + c["click:h"] > 0
        flags = {
            "opened": opened,
            "clicked": c["click:h"] > 0,
            "machine": c["open:m"] > 0,
            "opened_or_auto": opened or c["open:m"] > 0,
            "scanned": c["open:s"] + c["click:s"] > 0,
            "human_open": c["open:h"] > 0,
        }
        for flag, on in flags.items():
            if on:
                out[("unique", flag)] += 1
                if flag in ("opened", "clicked"):
                    out[("variant", f"{variant_of[mid]}{SEP}{flag}")] += 1
    return +out


def _actual(engine: Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as conn:
        got = conn.execute(select(counters.c.dim, counters.c.key, counters.c.n)).all()
    skip = {"os", "device", "country", "ttfo"}
    out = Counter(
        {
            (d, k): n
            for d, k, n in got
            if d not in skip and not (d == "variant" and k.endswith("messages"))
        }
    )
    return +out


def _relabel_some(engine: Engine, rng: random.Random, k: int) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, message_id, kind, label, at, link_position, client FROM events")
        ).all()
    changes: list[tuple[Event, str, list[str]]] = []
    for r in rng.sample(rows, k):
        kind = Kind(r.kind)
        stored = Event(
            id=r.id,
            message_id=r.message_id,
            kind=kind,
            at=r.at,
            method="GET",
            ip="192.0.2.1",
            user_agent="ua",
            label=r.label,
            link_position=r.link_position,
            client=r.client,
            os="Windows",
            device="desktop",
        )
        new = rng.choice(OPEN if kind == Kind.OPEN else CLICK)
        changes.append((stored, new, ["test:relabel"]))
    apply_relabels(engine, changes)


def test_rollups_match_a_recount_after_batches_and_relabels(db_url: str) -> None:
    engine = _engine(db_url)
    rng = random.Random(7)
    mids = _messages(engine, 12)
    _record(engine, [_random_event(rng, mids, 1_000_000.0 + i * 97) for i in range(400)])
    assert _actual(engine) == _expected(engine)
    _relabel_some(engine, rng, 120)
    assert _actual(engine) == _expected(engine)
    with engine.connect() as conn:
        labels = conn.execute(text("SELECT reasons FROM events WHERE reasons LIKE '%relabel%'"))
        assert all(json.loads(r[0]) == ["test:relabel"] for r in labels)
    engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_writers_on_postgresql_keep_unique_counts_exact(db_url: str) -> None:
    engine_a, engine_b = _engine(db_url), _engine(db_url)
    rng = random.Random(11)
    mids = _messages(engine_a, 6)  # few messages: both writers fight over the same rows
    events = [_random_event(rng, mids, 1_000_000.0 + i) for i in range(600)]
    errors: list[Any] = []

    def writer(engine: Engine, part: list[Event]) -> None:
        try:
            _record(engine, part)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(engine_a, events[0::2])),
        threading.Thread(target=writer, args=(engine_b, events[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert _actual(engine_a) == _expected(engine_a)
    engine_a.dispose()
    engine_b.dispose()
