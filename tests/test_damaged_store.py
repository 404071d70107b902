"""A SQLite file damaged in the middle is refused at start, in one line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import insert

from mailbeacon.store import make_engine, upgrade
from mailbeacon.store.schema import events
from tests.helpers import cli

PAGE = 4096  # SQLite's default page size


def _real_file(path: Path) -> None:
    """A migrated database with ~5 MB of events, checkpointed into the main file."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    row = {
        "message_id": 1,
        "kind": "open",
        "method": "GET",
        "ip": "203.0.113.0",
        "ip_hash": "0" * 32,
        "user_agent": "Mozilla/5.0 " + "x" * 200,
        "headers": "{}",
    }
    with engine.begin() as conn:
        conn.execute(insert(events), [{**row, "at": time.time() + i} for i in range(15_000)])
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_database_damaged_in_the_middle_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "mb.db"
    _real_file(path)
    pages = path.stat().st_size // PAGE
    assert pages > 500
    with path.open("r+b") as fh:  # one page in the middle, header and schema intact
        fh.seek(pages // 2 * PAGE)
        fh.write(bytes(range(256)) * (PAGE // 256))
    for command in (["serve", "--port", "0"], ["migrate"]):
        proc = cli(*command, db=f"sqlite:///{path}", check=False, timeout=120)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        said = proc.stderr.strip()
        assert "is damaged" in said and "quick_check" in said, said
        assert ".recover" in said and "backup" in said, said
        assert len(said.splitlines()) == 1 and "Traceback" not in proc.stdout + said


def test_the_check_can_be_skipped_and_a_healthy_file_passes(tmp_path: Path) -> None:
    path = tmp_path / "mb.db"
    _real_file(path)
    assert "schema is current" in cli("migrate", db=f"sqlite:///{path}").stdout
    skipped = cli("migrate", db=f"sqlite:///{path}", env={"MAILBEACON_CHECK_ON_START": "false"})
    assert skipped.returncode == 0
