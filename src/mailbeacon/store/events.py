"""The hot insert and the event listings."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, String, func, select

from mailbeacon import readtime
from mailbeacon.model import Event, Kind
from mailbeacon.store.db import placeholder
from mailbeacon.store.rollups import add_counts
from mailbeacon.store.schema import events, message_stats, messages

_COLUMNS = (
    "message_id",
    "kind",
    "at",
    "method",
    "ip",
    "ip_hash",
    "user_agent",
    "headers",
    "link_position",
    "url",
    "flags",
    "label",
    "reasons",
    "confidence",
    "client",
    "os",
    "device",
    "country",
)


# Each sized column's length, read from the schema: the one place sizes live.
# PostgreSQL refuses a longer value and fails the whole batch with it;
# SQLite would keep it, so both stores get the same cut.
SIZES: dict[str, int] = {
    c.name: c.type.length
    for c in events.columns
    if isinstance(c.type, String) and c.type.length is not None
}
# Event attribute -> the column that bounds it. ``ip`` (the full address) is
# never stored, but it is remembered for the classifier and is stored as is
# with ``--store-ip full``, so it gets the column's bound too.
_BOUNDED = (
    ("method", "method"),
    ("ip", "ip"),
    ("ip_stored", "ip"),
    ("ip_hash", "ip_hash"),
    ("user_agent", "user_agent"),
    ("label", "label"),
    ("client", "client"),
    ("os", "os"),
    ("device", "device"),
    ("country", "country"),
)
_LIMITS = tuple((attr, SIZES[column]) for attr, column in _BOUNDED)


def clean(text: str, limit: int | None = None) -> str:
    """``text`` as every store takes it: no NUL (PostgreSQL refuses it in
    text columns), no lone surrogate (not encodable as UTF-8), and at most
    ``limit`` characters (column sizes count characters on both stores)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogate -> "?"
    if "\x00" in text:
        text = text.replace("\x00", "")
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def fit(e: Event) -> Event:
    """Make every value derived from the request fit its column, in place.

    Called by the writer just before a batch is encoded, so the rollups see
    the same (cut) values as the stored row. ~1 us per ordinary event: the
    common case (ASCII, short, no NUL) is checked inline, without a call.
    """
    for attr, size in _LIMITS:
        value = getattr(e, attr)
        if value is None or (len(value) <= size and value.isascii() and "\x00" not in value):
            continue
        setattr(e, attr, clean(value, size))
    if e.url is not None and not (e.url.isascii() and "\x00" not in e.url):
        e.url = clean(e.url)
    for value in e.headers.values():
        if not value.isascii() or "\x00" in value:
            e.headers = {k: clean(v) for k, v in e.headers.items()}
            break
    return e


def insert_sql(engine: Engine) -> str:
    """A plain INSERT for the driver's executemany.

    The recorder writes through the DB-API cursor: SQLAlchemy's Core insert
    costs ~4x more CPU per row on batches of 64 (see bench/pixel), and this
    statement is the only one on the hot path.
    """
    marks = ", ".join([placeholder(engine)] * len(_COLUMNS))
    return f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({marks})"


# orjson: ~0.3 us per dump against ~3.3 us for json.dumps; two dumps per
# event were a fifth of the writer's Python time in bench/hotpath.py.
_dumps = orjson.dumps


def row(e: Event) -> tuple[Any, ...]:
    return (
        e.message_id,
        e.kind.value,
        e.at,
        e.method,
        e.ip_stored,
        e.ip_hash,
        e.user_agent,
        _dumps(e.headers).decode(),
        e.link_position,
        e.url,
        clean(",".join(e.token_flags), SIZES["flags"]),
        e.label,
        _dumps(e.reasons).decode() if e.reasons else "[]",
        e.confidence,
        e.client,
        e.os,
        e.device,
        e.country,
    )


def dead_letter_sql(engine: Engine) -> str:
    m = placeholder(engine)
    return f"INSERT INTO dead_letters (at, message_id, payload, error) VALUES ({m}, {m}, {m}, {m})"


# The largest id a BIGINT column holds; an event for a larger one is kept
# with message_id NULL (its payload still names it).
_MAX_ID = 2**63 - 1


def dead_letter_row(e: Event, error: BaseException, at: float) -> tuple[Any, ...]:
    """A row for ``dead_letters`` that no store can refuse: the payload is
    ASCII JSON (NULs and surrogates escaped), the error text is cleaned and
    cut. The full client address stays out, as it does for events."""
    payload = {
        "message_id": e.message_id,
        "kind": str(e.kind),
        "at": e.at,
        "method": e.method,
        "ip": e.ip_stored,
        "ip_hash": e.ip_hash,
        "user_agent": e.user_agent,
        "headers": e.headers,
        "link_position": e.link_position,
        "url": e.url,
        "flags": list(e.token_flags),
        "label": e.label,
        "reasons": e.reasons,
        "confidence": e.confidence,
        "client": e.client,
        "os": e.os,
        "device": e.device,
        "country": e.country,
    }
    text = json.dumps(payload, ensure_ascii=True, default=str)
    mid = e.message_id if isinstance(e.message_id, int) and 0 <= e.message_id <= _MAX_ID else None
    reason = clean(f"{type(error).__name__}: {error}", 2000)
    return (at, mid, text, reason)


def list_events(
    conn: Connection,
    *,
    message_id: int | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    q = select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
    if message_id is not None:
        q = q.where(events.c.message_id == message_id)
    return [public(r._mapping) for r in conn.execute(q).all()]


def public(m: Any) -> dict[str, Any]:
    """An event row as the API shows it."""
    from mailbeacon.timefmt import iso

    return {
        "id": m["id"],
        "message_id": m["message_id"],
        "kind": m["kind"],
        "at": iso(m["at"]),
        "method": m["method"],
        "ip": m["ip"],
        "user_agent": m["user_agent"],
        "link_position": m["link_position"],
        "url": m["url"],
        "flags": [f for f in (m["flags"] or "").split(",") if f],
        "label": m["label"],
        "reasons": json.loads(m["reasons"]) if m["reasons"] else [],
        "confidence": m["confidence"],
        "client": m["client"],
        "os": m["os"],
        "device": m["device"],
        "country": m["country"],
        # Read time (docs/read-time.md): seconds a streamed pixel stayed open.
        "read_seconds": _seconds(m.get("read_seconds")),
        "read_bucket": readtime.bucket_of(m["kind"], m["label"], m.get("read_seconds")),
        # A reply's sender (replies only; hits have none): kept in the headers
        # JSON with the reply's Message-ID hash, never a body.
        "from": _reply_from(m),
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _reply_from(m: Any) -> str | None:
    if m["kind"] != "reply" or not m["headers"]:
        return None
    value = json.loads(m["headers"]).get("from")
    return str(value) if value else None


def relabel(cur: Any, mark: str, changes: Sequence[tuple[int | None, str, Sequence[str]]]) -> None:
    """Write new labels and reasons for stored events ``(id, label, reasons)``
    on a raw cursor inside the caller's transaction (rollups move with them)."""
    cur.executemany(
        f"UPDATE events SET label = {mark}, reasons = {mark} WHERE id = {mark}",
        [(label, json.dumps(list(reasons)), eid) for eid, label, reasons in changes],
    )


def event_and_message(engine: Engine, event_id: int, message_id: int) -> tuple[Any, Any]:
    """The stored event row and its message row (either None if gone)."""
    with engine.connect() as conn:
        ev = conn.execute(select(events).where(events.c.id == event_id)).first()
        msg = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    return ev, msg


def latest_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)


def feed(
    engine: Engine,
    *,
    after: int | None = None,
    limit: int = 200,
    labels: list[str] | None = None,
    campaign_id: int | None = None,
    up_to: int | None = None,
) -> list[Any]:
    """Events with their message's recipient, subject, campaign and first-human
    times (the live feed's rows): after ``after`` oldest first, else the last
    ``limit`` (up to id ``up_to``) newest first."""
    q = select(
        events,
        messages.c.recipient,
        messages.c.subject,
        messages.c.campaign_id,
        message_stats.c.opened_at,
        message_stats.c.first_human_click_at,
        message_stats.c.replied_at,
    ).select_from(
        events.outerjoin(messages, messages.c.id == events.c.message_id).outerjoin(
            message_stats, message_stats.c.message_id == events.c.message_id
        )
    )
    if after is not None:
        q = q.where(events.c.id > after).order_by(events.c.id)
    else:
        if up_to is not None:
            q = q.where(events.c.id <= up_to)
        q = q.order_by(events.c.id.desc())
    if labels is not None:
        q = q.where(events.c.label.in_(labels))
    if campaign_id is not None:
        q = q.where(messages.c.campaign_id == campaign_id)
    with engine.connect() as conn:
        return [r._mapping for r in conn.execute(q.limit(limit)).all()]


def insert_rows(cur: Any, sql: str, rows: Sequence[Sequence[Any]], sqlite: bool) -> list[int]:
    """The writer's hot insert on the raw driver (``sql`` from :func:`insert_sql`):
    every row of a batch in one call; the ids they got, in order."""
    if sqlite:
        # One multi-row INSERT per ROWS_PER_INSERT rows, not executemany: each
        # statement run costs SQLite its setup and an AUTOINCREMENT update of
        # sqlite_sequence, so one statement for 30 rows took ~7 us a row
        # against ~10 us with executemany (one core; bench/hotpath.py).
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            cur.execute(_multi_row(sql, len(chunk)), [v for r in chunk for v in r])
        # One writer holds the lock for the whole batch, so its rowids are
        # consecutive and end at last_insert_rowid().
        cur.execute("SELECT last_insert_rowid()")
        last = int(cur.fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))
    # psycopg pipelines executemany; returning=True keeps each row's id
    # (several nodes interleave sequence values).
    cur.executemany(sql + " RETURNING id", rows, returning=True)
    ids = []
    while True:
        ids.append(int(cur.fetchone()[0]))
        if not cur.nextset():
            break
    return ids


HITS_CHUNK = 5000
# Rows per SQLite INSERT statement: 64 x 18 values stays far below SQLite's
# 32,766 bound variables, and a batch of the usual size is one statement.
ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _multi_row(sql: str, n: int) -> str:
    """``sql`` (one row's INSERT ... VALUES (...)) for ``n`` rows."""
    values = sql[sql.rindex(" VALUES ") + len(" VALUES ") :]
    return sql + f", {values}" * (n - 1)


def _hits_query(campaign_id: int | None, since: float | None, message_id: int | None = None) -> Any:
    # Hits only: replies and reminders are not labelled by the hit classifier.
    hits = (Kind.OPEN.value, Kind.CLICK.value)
    q = select(events).where(events.c.kind.in_(hits)).order_by(events.c.at, events.c.id)
    if message_id is not None:
        q = q.where(events.c.message_id == message_id)
    if campaign_id is not None:
        ids = select(messages.c.id).where(messages.c.campaign_id == campaign_id)
        q = q.where(events.c.message_id.in_(ids))
    if since is not None:
        q = q.where(events.c.at >= since)
    return q


def count_hits(engine: Engine, campaign_id: int | None, since: float | None) -> int:
    """Stored opens and clicks of a campaign / since a time (all if None)."""
    sub = _hits_query(campaign_id, since).order_by(None).subquery()
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())


def stored_hits(
    engine: Engine, campaign_id: int | None, since: float | None, message_id: int | None
) -> Iterator[Any]:
    """Those hits in the order they happened, streamed in chunks."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=HITS_CHUNK).execute(
            _hits_query(campaign_id, since, message_id)
        )
        yield from result


def stored_event(row: Any) -> Event:
    """An Event as the live path had it, from a stored row (the /24 or /48 as ip)."""
    ip = row.ip.split("/", 1)[0] if row.ip else ""
    return Event(
        id=row.id,
        message_id=row.message_id,
        kind=Kind(row.kind),
        at=row.at,
        method=row.method,
        ip=ip,
        ip_stored=row.ip,
        ip_hash=row.ip_hash,
        user_agent=row.user_agent,
        headers=json.loads(row.headers or "{}"),
        link_position=row.link_position,
        url=row.url,
        token_flags=tuple(f for f in (row.flags or "").split(",") if f),
        label=row.label,
        reasons=json.loads(row.reasons) if row.reasons else [],
    )


def set_read_seconds(cur: Any, mark: str, pg: bool, items: Sequence[tuple[int, float]]) -> None:
    """Record how long each (event id, seconds) open stayed on screen, with its rollups.

    Run by the writer thread in a transaction of its own, after a streamed
    pixel's connection ended; the event was committed long before. Each
    measured open counts once in ``counters`` (dim ``read``, key its bucket);
    a message's first ``read`` open sets ``message_stats.read_at`` and counts
    it in ``unique:read`` (the campaign's read rate). An event set already,
    or erased meanwhile, is skipped.
    """
    ids = sorted({eid for eid, _ in items})
    if not ids:
        return
    marks = ",".join([mark] * len(ids))
    cur.execute(
        f"SELECT id, message_id, label FROM events WHERE id IN ({marks}) "
        "AND kind = 'open' AND read_seconds IS NULL",
        ids,
    )
    found = {int(r[0]): (int(r[1]), r[2]) for r in cur.fetchall()}
    todo: list[tuple[int, float]] = []
    seen: set[int] = set()
    for eid, sec in items:
        if eid in found and eid not in seen:  # one measure per open: the first
            seen.add(eid)
            todo.append((eid, float(sec)))
    if not todo:
        return
    # Events first, then the message rows: the order a relabel takes its
    # locks in (hits.labeller.apply_relabels), so two nodes never wait on each other.
    cur.executemany(
        f"UPDATE events SET read_seconds = {mark} WHERE id = {mark}", [(s, e) for e, s in todo]
    )
    mids = sorted({found[eid][0] for eid, _ in todo})
    lock = " FOR UPDATE" if pg else ""  # two nodes may add a message's first read at once
    cur.execute(
        f"SELECT message_id, campaign_id, read_at FROM message_stats WHERE message_id IN "
        f"({','.join([mark] * len(mids))}) ORDER BY message_id{lock}",
        mids,
    )
    stats = {int(r[0]): (int(r[1]), r[2]) for r in cur.fetchall()}
    thresholds = readtime.current()
    counts: dict[tuple[int, str, str], int] = {}
    first_read: dict[int, float] = {}
    for eid, sec in todo:
        mid, label = found[eid]
        if mid not in stats or label not in readtime.MEASURABLE:
            continue  # erased, or relabelled since (a scanner's hold is not a read)
        cid, read_at = stats[mid]
        bucket = thresholds.bucket(sec)
        key = (cid, "read", bucket)
        counts[key] = counts.get(key, 0) + 1
        if bucket == readtime.READ and read_at is None and mid not in first_read:
            first_read[mid] = time.time()
            key = (cid, "unique", "read")
            counts[key] = counts.get(key, 0) + 1
    if first_read:
        cur.executemany(
            f"UPDATE message_stats SET read_at = {mark} WHERE message_id = {mark}",
            [(at, mid) for mid, at in sorted(first_read.items())],
        )
    add_counts(cur, mark, counts)


def read_times(conn: Connection, message_id: int) -> list[tuple[str | None, float | None]]:
    """(label, read_seconds) of a message's opens, for its read-time summary."""
    rows = conn.execute(
        select(events.c.label, events.c.read_seconds).where(
            events.c.message_id == message_id, events.c.kind == "open"
        )
    ).all()
    return [(r[0], r[1]) for r in rows]


__all__ = [
    "insert_rows",
    "feed",
    "latest_id",
    "read_times",
    "set_read_seconds",
    "event_and_message",
    "count_hits",
    "stored_event",
    "stored_hits",
    "relabel",
    "SIZES",
    "clean",
    "dead_letter_row",
    "dead_letter_sql",
    "fit",
    "insert_sql",
    "row",
    "list_events",
    "public",
    "Sequence",
]
