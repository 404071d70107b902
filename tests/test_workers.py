"""`serve --workers N`: several processes on one port, every hit durable, jobs once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailbeacon.store.rollups import OPEN_LABELS
from tests.helpers import Server, recorded, rows, start_server

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6"


def _processes(srv: Server, want: int, attempts: int = 2000) -> dict[int, bool]:
    """Process id -> primary, from /healthz on fresh connections, until ``want`` answered."""
    seen: dict[int, bool] = {}
    for _ in range(attempts):
        with httpx.Client(timeout=10) as c:  # a new connection each time
            body = c.get(f"{srv.url}/healthz").json()
        seen[int(body["process"])] = bool(body["primary"])
        if len(seen) >= want:
            break
    return seen


@pytest.fixture
def two(db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(db_url, tmp_path, extra_args=["--workers", "2"])
    yield srv
    srv.stop()


def test_two_processes_answer_and_only_one_is_primary(two: Server) -> None:
    seen = _processes(two, 2)
    assert len(seen) == 2, seen
    assert sorted(seen.values()) == [False, True]
    assert "2 worker processes" in two.output()


def test_every_acknowledged_hit_is_stored_whichever_process_took_it(two: Server) -> None:
    msg = two.message(recipient="many@example.com")
    acked = 0
    # A new connection per hit, so both processes take hits and both writers
    # commit into the one store (SQLite: taking turns on the WAL file).
    for n in range(200):
        with httpx.Client(timeout=15) as c:
            r = c.get(msg["open_url"], headers={"User-Agent": f"{THUNDERBIRD}.{n}"})
        assert r.status_code == 200
        acked += recorded(r) == "yes"
    assert acked == 200
    stored = rows(two.db, "SELECT count(*) FROM events WHERE message_id = ?", (msg["id"],))
    assert stored[0][0] == 200
    total = " + ".join(f"open_{label}" for label in OPEN_LABELS)
    counted = rows(two.db, f"SELECT {total} FROM message_stats WHERE message_id = ?", (msg["id"],))
    assert counted and counted[0][0] == 200  # the rollups saw every hit exactly once


def test_a_killed_worker_is_replaced_and_sigterm_stops_all(two: Server) -> None:
    seen = _processes(two, 2)
    victim = next(pid for pid, primary in seen.items() if not primary)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    fresh: dict[int, bool] = {}
    while time.monotonic() < deadline:
        fresh = _processes(two, 2, attempts=200)
        if len(fresh) == 2 and victim not in fresh:
            break
    assert len(fresh) == 2 and victim not in fresh, fresh
    two.stop()
    assert two.proc.returncode == 0, two.output()
    for pid in fresh:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
