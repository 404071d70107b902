"""Campaign report speed at 1M events / 100k messages (docs/design.md: <= 50 ms).

Generates one campaign straight into the tables: messages, links, the
message_stats rows, then random events inserted in batches of 5,000 with the
recorder's own SQL, and their rollups through ``mailbeacon.store.rollups.apply`` on
the same raw cursor and transaction (exactly what the recorder does, minus
the HTTP). Then times ``campaign_report`` in process: median of 20 calls
after 2 warm-ups. SQLite (a temp file) and PostgreSQL (database
``mb_bench_reports``, created and dropped with ``psql -h 127.0.0.1 -U
postgres``); ``--ten-million`` adds 10M events / 1M messages on SQLite.

    .venv/bin/python bench/reports.py                 # 1M on SQLite and PostgreSQL
    .venv/bin/python bench/reports.py --no-pg --events 200000 --messages 20000 --no-write
    .venv/bin/python bench/reports.py --ten-million   # + 10M on SQLite (~30 min)

Writes the ``<!-- bench:reports -->`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from mailbeacon.model import Event, Kind  # noqa: E402
from mailbeacon.reports import campaign_report  # noqa: E402
from mailbeacon.store import events as event_store  # noqa: E402
from mailbeacon.store import (  # noqa: E402
    make_engine,
    rollups,
    upgrade,
)
from mailbeacon.store.db import placeholder  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
PG_DB = "mb_bench_reports"
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtAX"]
BATCH = 5000
TARGET_MS = 50.0
T0 = 1_700_000_000.0  # sent_at of every message; events follow over 14 days
# (kind, label, share): roughly a B2B newsletter with Apple MPP and scanners.
MIX = [
    (Kind.OPEN, "human_direct", 0.30),
    (Kind.OPEN, "human_via_proxy", 0.15),
    (Kind.OPEN, "machine_prefetch", 0.20),
    (Kind.OPEN, "security_scanner", 0.05),
    (Kind.OPEN, "bot_other", 0.03),
    (Kind.OPEN, "self", 0.02),
    (Kind.CLICK, "human", 0.15),
    (Kind.CLICK, "scanner", 0.08),
    (Kind.CLICK, "bot", 0.02),
]
CLIENTS = ["Outlook", "Gmail", "Apple Mail", "Thunderbird", "Yahoo Mail", None]
COUNTRIES = ["DE", "US", "FR", "GB", "NL", None]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def generate(engine: Any, n_messages: int, n_events: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    mark = placeholder(engine)
    pg = engine.dialect.name != "sqlite"
    raw = engine.raw_connection()
    cur = raw.cursor()
    cur.execute(f"INSERT INTO campaigns (id, name, created_at) VALUES (1, 'bench', {T0})")
    variants = ["A", "B"]
    for start in range(1, n_messages + 1, 20_000):
        ids = range(start, min(start + 20_000, n_messages + 1))
        cur.executemany(
            f"INSERT INTO messages (id, campaign_id, recipient, variant, sent_at, created_at) "
            f"VALUES ({mark},1,{mark},{mark},{T0},{T0})",
            [(i, f"r{i}@example.org", variants[i % 2]) for i in ids],
        )
        cur.executemany(
            f"INSERT INTO message_stats (message_id, campaign_id, variant, sent_at) "
            f"VALUES ({mark},1,{mark},{T0})",
            [(i, variants[i % 2]) for i in ids],
        )
        cur.executemany(
            f"INSERT INTO links (message_id, position, url) VALUES ({mark},{mark},{mark})",
            [(i, p, f"https://example.com/{p}") for i in ids for p in (1, 2, 3)],
        )
    rollups.add_counts(
        cur,
        mark,
        {
            (1, "unique", "messages"): n_messages,
            (1, "variant", f"A{rollups.SEP}messages"): n_messages // 2,
            (1, "variant", f"B{rollups.SEP}messages"): n_messages - n_messages // 2,
        },
    )
    if pg:
        cur.execute("SELECT setval('messages_id_seq', %s)", (n_messages,))
    raw.commit()
    kinds = [(k, lab) for k, lab, _ in MIX]
    weights = [w for _, _, w in MIX]
    sql = event_store.insert_sql(engine)
    done = 0
    t = time.monotonic()
    while done < n_events:
        batch = []
        for _ in range(min(BATCH, n_events - done)):
            kind, label = rng.choices(kinds, weights)[0]
            batch.append(
                Event(
                    message_id=rng.randint(1, n_messages),
                    kind=kind,
                    at=T0 + rng.expovariate(1 / 86400.0) % (14 * 86400),
                    method="GET",
                    ip="",
                    ip_stored="192.0.2.0/24",
                    ip_hash="h",
                    user_agent="Mozilla/5.0",
                    label=label,
                    link_position=rng.choice((1, 2, 3)) if kind == Kind.CLICK else None,
                    client=rng.choice(CLIENTS),
                    os="Windows",
                    device="desktop",
                    country=rng.choice(COUNTRIES),
                )
            )
        cur.executemany(sql, [event_store.row(e) for e in batch])
        rollups.apply(cur, mark, pg, [(e, 1) for e in batch])
        raw.commit()
        done += len(batch)
        if done % 200_000 == 0:
            rate = done / (time.monotonic() - t)
            log(f"  {done:,} events ({rate:,.0f}/s)")
    cur.close()
    raw.close()
    if pg:
        subprocess.run([*PG_ADMIN, "-d", PG_DB, "-c", "VACUUM ANALYZE"], check=True)
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return 1


def time_report(engine: Any, cid: int, runs: int = 20) -> tuple[float, float, dict[str, Any]]:
    with engine.connect() as conn:
        for _ in range(2):
            rep = campaign_report(conn, cid, "Europe/Berlin")
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            rep = campaign_report(conn, cid, "Europe/Berlin")
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times), rep


def run(label: str, url: str, n_messages: int, n_events: int) -> dict[str, Any]:
    engine = make_engine(url, sqlite_sync="normal")
    upgrade(engine)
    log(f"{label}: generating {n_messages:,} messages, {n_events:,} events")
    t = time.monotonic()
    cid = generate(engine, n_messages, n_events)
    gen_s = time.monotonic() - t
    median, worst, rep = time_report(engine, cid)
    log(f"{label}: report median {median:.1f} ms, max {worst:.1f} ms (generated in {gen_s:.0f} s)")
    with engine.connect() as conn:
        n_counters = conn.exec_driver_sql(
            "SELECT count(*) FROM counters WHERE campaign_id = 1"
        ).scalar_one()
    engine.dispose()
    return {
        "label": label,
        "messages": n_messages,
        "events": n_events,
        "median": median,
        "max": worst,
        "gen_s": gen_s,
        "counters": n_counters,
        "opened": rep["opens"]["human_unique"],
        "open_rate": rep["opens"]["open_rate"],
    }


def psql(sql: str) -> None:
    subprocess.run([*PG_ADMIN, "-d", "postgres", "-c", sql], check=True)


def write_doc(results: list[dict[str, Any]], cmd: str) -> None:
    lines = [
        "<!-- bench:reports -->",
        "## Campaign report",
        "",
        f"`bench/reports.py`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()} on {platform.machine()}. One campaign generated "
        "straight into the tables (events inserted with the recorder's SQL and rolled up by "
        "`rollups.apply` in batches of 5,000), then `campaign_report(conn, id, "
        "'Europe/Berlin')` in process: median and max of 20 calls after 2 warm-ups.",
        "",
        "| store | messages | events | counter rows | report median | max | target <= 50 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = "meets" if r["median"] <= TARGET_MS else "**FAILS**"
        lines.append(
            f"| {r['label']} | {r['messages']:,} | {r['events']:,} | {r['counters']:,} | "
            f"{r['median']:.1f} ms | {r['max']:.1f} ms | {ok} |"
        )
    lines += [
        "",
        "The report reads the campaign's `counters` rows (one primary-key range), the first "
        "open and the warm leads through their `message_stats` indexes, and one message's "
        "links; none of that grows with events. "
        f"Command: `{cmd}`.",
        "<!-- /bench:reports -->",
    ]
    section = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    start, end = "<!-- bench:reports -->", "<!-- /bench:reports -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--ten-million", action="store_true", help="also 10M events on SQLite")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run("SQLite", f"sqlite:///{tmp}/r.db", args.messages, args.events))
        if args.ten_million:
            results.append(run("SQLite", f"sqlite:///{tmp}/r10.db", 1_000_000, 10_000_000))
    if not args.no_pg:
        psql(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{PG_DB}"')
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
            results.append(run("PostgreSQL", url, args.messages, args.events))
        finally:
            psql(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    for r in results:
        print(
            f"{r['label']:<11} {r['events']:>11,} events  median {r['median']:.1f} ms  "
            f"max {r['max']:.1f} ms  ({r['counters']:,} counter rows)"
        )
    if not args.no_write:
        write_doc(results, "python bench/reports.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
