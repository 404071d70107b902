"""The naive Python peer: pytracking decoding on Flask, one SQLite commit per hit.

This is what "just use pytracking" looks like when every hit must be on disk
before it is answered (the same promise mailbeacon makes): decode the token
with pytracking's documented API, INSERT the event, COMMIT, answer. No batching.
SQLite is set up like mailbeacon's store (WAL, synchronous=FULL), so both
fsync before answering; only the commit strategy differs.

Tokens use pytracking's default encoding (base64 JSON, no Fernet key): that is
the least work pytracking can do per hit, so the peer is as fast as it gets.

Run (bench/pixel and bench/click do this for you):

    PYTRACKING_BENCH_DB=/tmp/peer.db gunicorn -w 1 -b 127.0.0.1:8001 \
        --no-control-socket --chdir /work/main bench.peers.pytracking_app:app

Print tracking URLs for a base URL (used by the harness):

    python bench/peers/pytracking_app.py urls http://127.0.0.1:8001
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time

import pytracking

OPEN_PATH = "/o/"
CLICK_PATH = "/c/"
DB_PATH = os.environ.get("PYTRACKING_BENCH_DB", "pytracking_bench.db")

# pytracking returns a 1x1 PNG; mailbeacon and nginx return a 43-byte GIF.
# Serve the same GIF so the responses are byte-for-byte comparable.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    url TEXT,
    metadata TEXT,
    ip TEXT,
    user_agent TEXT
)
"""


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB_PATH, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(SCHEMA)
    return conn


def urls(base: str) -> dict[str, str]:
    meta = {"message_id": 1, "recipient": "x@example.com"}
    return {
        "open_url": pytracking.get_open_tracking_url(
            meta, base_open_tracking_url=base.rstrip("/") + OPEN_PATH
        ),
        "click_url": pytracking.get_click_tracking_url(
            "https://example.com/a", meta, base_click_tracking_url=base.rstrip("/") + CLICK_PATH
        ),
    }


def _make_app():  # flask is imported lazily so `urls` works without it
    from flask import Flask, Response, redirect, request

    app = Flask(__name__)
    conn = _connect()

    def record(kind: str, result: pytracking.TrackingResult) -> None:
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO events (kind, at, url, metadata, ip, user_agent) VALUES (?,?,?,?,?,?)",
            (
                kind,
                time.time(),
                result.tracked_url,
                json.dumps(result.metadata),
                request.remote_addr,
                request.headers.get("User-Agent", ""),
            ),
        )
        conn.execute("COMMIT")  # one fsync per hit: the naive way to be durable

    @app.get("/o/<path:token>")
    def pixel(token: str) -> Response:
        result = pytracking.get_open_tracking_result(
            request.full_path.rstrip("?"), base_open_tracking_url=OPEN_PATH
        )
        record("open", result)
        resp = Response(GIF, mimetype="image/gif")
        resp.headers["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
        return resp

    @app.get("/c/<path:token>")
    def click(token: str) -> Response:
        result = pytracking.get_click_tracking_result(
            request.full_path.rstrip("?"), base_click_tracking_url=CLICK_PATH
        )
        record("click", result)
        resp = redirect(result.tracked_url, code=302)
        resp.headers["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
        return resp

    return app


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "urls":
        print(json.dumps(urls(sys.argv[2])))
        sys.exit(0)
    sys.exit(__doc__)

else:
    app = _make_app()
