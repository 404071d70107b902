"""Rollups, updated in the same transaction as each batch of events.

Reports read these and never scan raw events (GoatCounter's ``hit_counts``).

``message_stats`` holds one row per message with a counter per label; a
batch locks the rows it touches (``FOR UPDATE`` on PostgreSQL, the single
writer lock on SQLite), so "unique" numbers are exact: a message counts
once, at the moment it flips from not opened to opened, however many nodes
write at once. ``counters`` holds additive (campaign, dim, key) -> n:

====== ============================== =========================================
dim    key                            counts
====== ============================== =========================================
label  ``open:<label>``/``click:..``  events per label (totals); replies as
       /``reply:<label>``             ``reply:human|auto_reply|bounce``
unique ``messages``, ``opened``,      messages created / opened (human open or
       ``clicked``, ``machine``,      human click) / with a human click / with
       ``opened_or_auto``,            a machine prefetch / opened or prefetched
       ``scanned``, ``human_open``,   / touched by a scanner / with a human pixel hit
       ``replied``, ``bounced``,      / with a human reply / bounced / opened only
       ``opened_by_reply``            by a human reply (it implies the read)
hour   ``<unix hour>:<o|c>:<class>``  events per hour; class h(uman) m(achine)
                                      s(canner) b(ot) x (self) u(nlabelled)
link   ``<pos>:total|unique|other``   human clicks, messages clicking, others
client ``<client>``                   human opens by mail client
os, device, country                   direct human opens by OS / device / country
ttfo   ``<bucket>``                   time from sent_at to first open
variant ``<variant>\\x1f<metric>``     messages, opened, clicked per variant
first_open ``<unix hour>``            messages whose first human open (the
                                      ``first_human_open_at`` column) is in it
====== ============================== =========================================

Relabelling applies the old event with sign -1 and the new one with +1 in
one transaction, so every number stays consistent with the labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from mailbeacon.model import LABEL_CLASS, Event, LabelClass
from mailbeacon.store.schema import CLICK_LABELS, OPEN_LABELS

# Label classes as they appear in stored counter keys ("hour:<h>:o:h"): these
# letters are in the database, so they never change.
CLASS_CODE = {
    LabelClass.HUMAN: "h",
    LabelClass.MACHINE: "m",
    LabelClass.SCANNER: "s",
    LabelClass.BOT: "b",
    LabelClass.SELF: "x",
}
CLASS = {label: CLASS_CODE[cls] for label, cls in LABEL_CLASS.items()}
LABEL_COLS = [f"open_{lab}" for lab in OPEN_LABELS] + [f"click_{lab}" for lab in CLICK_LABELS]
TIME_COLS = [
    "opened_at",
    "first_human_open_at",
    "first_human_click_at",
    "last_human_at",
    "last_event_at",
]
REPLY_COLS = ["replied_at", "replies", "auto_replies", "bounced"]  # 0010, see _reply_delta
STATE_COLS = [
    "message_id", "campaign_id", "variant", "sent_at", *LABEL_COLS, *TIME_COLS, *REPLY_COLS
]  # fmt: skip
FLAGS = (
    "opened", "clicked", "machine", "opened_or_auto", "scanned", "human_open", "replied", "bounced"
)  # fmt: skip
SEP = "\x1f"  # between a variant name and its metric: cannot appear in a typed name

# Time to first open, from sent_at. Edges in seconds, chosen around how
# people read mail: at once, the same morning, the same day, later.
TTFO_EDGES = (
    (300, "<5m"),
    (1800, "5-30m"),
    (7200, "30m-2h"),
    (21600, "2-6h"),
    (86400, "6-24h"),
    (259200, "1-3d"),
)
TTFO_BUCKETS = [b for _, b in TTFO_EDGES] + [">3d", "unknown"]


def ttfo_bucket(sent_at: float | None, opened_at: float) -> str:
    if sent_at is None:
        return "unknown"
    delta = opened_at - sent_at
    for edge, name in TTFO_EDGES:
        if delta < edge:
            return name
    return ">3d"


def _flags(st: dict[str, Any]) -> tuple[bool, ...]:
    human_open = st["open_human_direct"] + st["open_human_via_proxy"] > 0
    clicked = st["click_human"] > 0
    replied = st["replies"] > 0  # a person answered: they read it, whatever the pixel said
    opened = human_open or clicked or replied
    machine = st["open_machine_prefetch"] > 0
    scanned = st["open_security_scanner"] + st["click_scanner"] > 0
    bounced = st["bounced"] > 0
    return (opened, clicked, machine, opened or machine, scanned, human_open, replied, bounced)


def _later(a: float | None, b: float) -> float:
    return b if a is None or b > a else a


Transition = tuple[Event, str, bool]  # (event that caused it, flag, now on?)


State = dict[int, dict[str, Any]]


def lock_state(cur: Any, mark: str, pg: bool, message_ids: Iterable[int]) -> State:
    """The message_stats rows of these messages, locked until the transaction
    ends (``FOR UPDATE``; SQLite's one writer holds the file). A message
    missing here was erased (its row goes first, see privacy.recipient_erase)."""
    mids = sorted(set(message_ids))
    if not mids:
        return {}
    lock = " FOR UPDATE" if pg else ""
    marks = ",".join([mark] * len(mids))
    cur.execute(
        f"SELECT {','.join(STATE_COLS)} FROM message_stats WHERE message_id IN ({marks}) "
        f"ORDER BY message_id{lock}",
        mids,
    )
    return {row[0]: dict(zip(STATE_COLS, row, strict=True)) for row in cur.fetchall()}


Counts = dict[tuple[int, str, str], int]  # (campaign, dim, key) -> n
Links = dict[tuple[int, int], list[int]]  # (message, position) -> [human, other]


def apply(
    cur: Any,
    mark: str,
    pg: bool,
    items: Sequence[tuple[Event, int]],
    state: State | None = None,
) -> list[Transition]:
    """Add (+1) or remove (-1) each event's contribution, inside the caller's transaction.

    ``state`` is what :func:`lock_state` returned for these events' messages
    in this transaction, if the caller already read it.
    Returns the per-message flag changes (e.g. a message becoming ``opened``:
    its first human open), for notifications written in the same transaction.

    Three steps: read and lock the rows the batch touches, work out the new
    values in memory (:func:`delta`, no I/O), write them back.
    """
    if not items:
        return []
    if state is None:
        state = lock_state(cur, mark, pg, (e.message_id for e, _ in items))
    links = _lock_links(cur, mark, pg, items, state)
    counts, transitions, touched = delta(state, links, items)
    _write(cur, mark, state, links, touched, counts)
    return transitions


def _lock_links(
    cur: Any, mark: str, pg: bool, items: Sequence[tuple[Event, int]], state: State
) -> Links:
    """The link_stats rows the batch's clicks touch, made if new, locked."""
    keys = sorted(
        {
            (e.message_id, e.link_position, state[e.message_id]["campaign_id"])
            for e, _ in items
            if e.kind == "click" and e.link_position is not None and e.message_id in state
        }
    )
    if not keys:
        return {}
    cur.executemany(
        f"INSERT INTO link_stats (message_id, position, campaign_id, human, other) "
        f"VALUES ({mark},{mark},{mark},0,0) ON CONFLICT (message_id, position) DO NOTHING",
        keys,
    )
    mids = sorted({k[0] for k in keys})
    lock = " FOR UPDATE" if pg else ""
    cur.execute(
        f"SELECT message_id, position, human, other FROM link_stats WHERE message_id "
        f"IN ({','.join([mark] * len(mids))}) ORDER BY message_id, position{lock}",
        mids,
    )
    return {(r[0], r[1]): [r[2], r[3]] for r in cur.fetchall()}


def delta(
    state: State, links: Links, items: Sequence[tuple[Event, int]]
) -> tuple[Counts, list[Transition], set[tuple[int, int]]]:
    """Pure: fold the events into ``state`` and ``links`` (changed in place) and
    return the counter deltas, the flag transitions and the links touched."""
    counts: Counts = defaultdict(int)
    transitions: list[Transition] = []
    touched: set[tuple[int, int]] = set()
    for e, sign in items:
        st = state.get(e.message_id)
        if st is None:
            continue  # erased message: nothing to count
        before, first = _flags(st), st["first_human_open_at"]
        cls = _label_delta(st, e, sign, counts)
        if _is_link_click(e):
            touched.add(_link_delta(st, links, e, sign, cls, counts))
        _flag_delta(st, e, sign, cls, before, counts, transitions)
        if st["first_human_open_at"] != first:  # most hits leave it as it was
            _first_open_delta(st, first, counts)
    return counts, transitions, touched


def _first_open_delta(st: dict[str, Any], was: float | None, counts: Counts) -> None:
    """Move the message between ``first_open`` hours when its first human
    open changed (send-time advice, reports/sendtime.py)."""
    old, new = (
        None if t is None else str(int(t // 3600)) for t in (was, st["first_human_open_at"])
    )
    if old != new:
        if old is not None:
            counts[(st["campaign_id"], "first_open", old)] -= 1
        if new is not None:
            counts[(st["campaign_id"], "first_open", new)] += 1


def _is_link_click(e: Event) -> bool:
    return e.kind == "click" and e.link_position is not None


def _label_delta(st: dict[str, Any], e: Event, sign: int, counts: Counts) -> str:
    """Per-label columns and counters, hours, times and human clients; the label class."""
    # Kind is a StrEnum: the member is a str equal to its value and formats as
    # it, so no .value (a Python-level descriptor, once per use, per event).
    cid, kind, label = st["campaign_id"], e.kind, e.label
    # Replies keep their own counters (_reply_delta), not the hits' paths.
    cls = "r" if kind == "reply" else CLASS.get(label or "", "u")
    col = f"{kind}_{label}"
    if col in st:
        st[col] += sign
    counts[(cid, "label", f"{kind}:{label or 'unlabelled'}")] += sign
    if cls == "r":
        _reply_delta(st, e, sign, counts)
    else:
        counts[(cid, "hour", f"{int(e.at // 3600)}:{kind[0]}:{cls}")] += sign
    if sign > 0:
        st["last_event_at"] = _later(st["last_event_at"], e.at)
    if cls == "h":
        if sign > 0:
            st["last_human_at"] = _later(st["last_human_at"], e.at)
        first = "first_human_open_at" if kind == "open" else "first_human_click_at"
        if sign > 0 and (st[first] is None or e.at < st[first]):
            st[first] = e.at
        if kind == "open":
            if e.client:
                counts[(cid, "client", e.client)] += sign
            if label == "human_direct":
                for dim, value in (("os", e.os), ("device", e.device), ("country", e.country)):
                    if value:
                        counts[(cid, dim, value)] += sign
    return cls


def _link_delta(
    st: dict[str, Any], links: Links, e: Event, sign: int, cls: str, counts: Counts
) -> tuple[int, int]:
    """A click on a link: its human/other counts, total and unique people."""
    cid, pos = st["campaign_id"], int(e.link_position or 0)
    key = (e.message_id, pos)
    ls = links.setdefault(key, [0, 0])
    if cls == "h":
        was = ls[0] > 0
        ls[0] += sign
        counts[(cid, "link", f"{pos}:total")] += sign
        if (ls[0] > 0) != was:
            counts[(cid, "link", f"{pos}:unique")] += 1 if ls[0] > 0 else -1
    else:
        ls[1] += sign
        counts[(cid, "link", f"{pos}:other")] += sign
    return key


def _flag_delta(
    st: dict[str, Any],
    e: Event,
    sign: int,
    cls: str,
    before: tuple[bool, ...],
    counts: Counts,
    transitions: list[Transition],
) -> None:
    """Per-message flags (opened, clicked, ...) that turned on or off: unique
    counters, variants, time to first open, and the first-human times."""
    cid, variant, kind = st["campaign_id"], st["variant"], e.kind
    after = _flags(st)
    if after != before:
        for flag, b, a in zip(FLAGS, before, after, strict=True):
            if a != b:
                transitions.append((e, flag, a))
                d = 1 if a else -1
                counts[(cid, "unique", flag)] += d
                if variant and flag in ("opened", "clicked"):
                    counts[(cid, "variant", f"{variant}{SEP}{flag}")] += d
        if after[0] and not before[0]:
            st["opened_at"] = e.at
            counts[(cid, "ttfo", ttfo_bucket(st["sent_at"], e.at))] += 1
        elif before[0] and not after[0]:
            if st["opened_at"] is not None:
                counts[(cid, "ttfo", ttfo_bucket(st["sent_at"], st["opened_at"]))] -= 1
            st["opened_at"] = None
    if cls == "h" and sign < 0:
        if kind == "open" and not after[5]:
            st["first_human_open_at"] = None
        if kind == "click" and not after[1]:
            st["first_human_click_at"] = None


def _write(
    cur: Any,
    mark: str,
    state: State,
    links: Links,
    touched: set[tuple[int, int]],
    counts: Counts,
) -> None:
    cols = [*LABEL_COLS, *TIME_COLS, *REPLY_COLS]
    sets = ", ".join(f"{c} = {mark}" for c in cols)
    cur.executemany(
        f"UPDATE message_stats SET {sets} WHERE message_id = {mark}",
        [[st[c] for c in cols] + [mid] for mid, st in sorted(state.items())],
    )
    if touched:
        cur.executemany(
            f"UPDATE link_stats SET human = {mark}, other = {mark} "
            f"WHERE message_id = {mark} AND position = {mark}",
            [(links[k][0], links[k][1], k[0], k[1]) for k in sorted(touched)],
        )
    add_counts(cur, mark, counts)


def _reply_delta(st: dict[str, Any], e: Event, sign: int, counts: Any) -> None:
    """A reply's contribution: human replies (first one's time), auto-replies,
    bounces. A human reply on a message with no human open or click opens it
    (the flags do that), counted apart as ``unique:opened_by_reply``."""
    cid = st["campaign_id"]
    if e.label == "human":
        was = _flags(st)[0]
        st["replies"] += sign
        if sign > 0:
            st["last_human_at"] = _later(st["last_human_at"], e.at)
            if st["replied_at"] is None or e.at < st["replied_at"]:
                st["replied_at"] = e.at
        elif st["replies"] <= 0:
            st["replied_at"] = None
        if _flags(st)[0] != was:
            counts[(cid, "unique", "opened_by_reply")] += 1 if not was else -1
    elif e.label == "auto_reply":
        st["auto_replies"] += sign
    elif e.label == "bounce":
        st["bounced"] += sign


def add_counts(cur: Any, mark: str, counts: dict[tuple[int, str, str], int]) -> None:
    """Additive upsert; sorted so concurrent writers lock rows in one order."""
    rows = sorted((cid, dim, key, n) for (cid, dim, key), n in counts.items() if n)
    if rows:
        cur.executemany(
            f"INSERT INTO counters (campaign_id, dim, key, n) VALUES ({mark},{mark},{mark},{mark}) "
            "ON CONFLICT (campaign_id, dim, key) DO UPDATE SET n = counters.n + excluded.n",
            rows,
        )
