"""The IP hash cannot be reversed from the database: its key lives in a file
of the data directory (or a setting), never in a table. With the database
alone, trying the 256 addresses of each stored /24 gives nothing back; with
the key it gives every one (which is why the key must stay out). Nodes
sharing a database hash alike with the same key and refuse to start without
it; a key left in the database by an older version moves to the file."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import stat
from pathlib import Path

import pytest

from mailbeacon.hits.iphash import fingerprint
from tests.helpers import Server, cells, cli, rows, start_server
from tests.traffic import THUNDERBIRD, ago, hit

pytestmark = pytest.mark.process  # every test starts `serve` (two nodes, refusals at start)

VISITORS = [f"198.51.100.{n}" for n in (3, 7, 19, 42, 77, 101, 128, 150, 173, 200, 222, 240, 254)]


def digest(key: bytes, addr: str) -> str:
    return hmac.new(key, addr.encode(), hashlib.sha256).hexdigest()[:32]


def brute_force(stored: list[tuple[str, str]], key: bytes) -> set[str]:
    """Addresses recovered by trying all 256 hosts of each stored /24."""
    found = set()
    for net, h in stored:
        for host in ipaddress.ip_network(net):
            if digest(key, str(host)) == h:
                found.add(str(host))
    return found


def every_text_value(db: str) -> set[str]:
    """All values of all cells of every table (the attacker's view)."""
    return {str(v) for _, _, v in cells(db) if v is not None}


def serve_refuses(db: str, env: dict[str, str]) -> str:
    proc = cli("serve", "--port", "0", db=db, env=env, check=False, timeout=60)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr.strip()


def test_database_alone_does_not_reverse_the_hash(db_url: str, tmp_path: Path) -> None:
    srv = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    try:
        msg = srv.message(sent_at=ago(3600))
        for ip in VISITORS:
            hit(msg["open_url"], ip, THUNDERBIRD)
    finally:
        srv.stop()
    stored = rows(db_url, "SELECT ip, ip_hash FROM events")
    assert len(stored) == len(VISITORS) and {ip for ip, _ in stored} == {"198.51.100.0/24"}

    key_file = tmp_path / "data" / "ip_hash.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    # With the key, the /24 gives every address back: the attack is real...
    assert brute_force(stored, key) == set(VISITORS)
    # ...and the database holds no key to run it with: no value of any table
    # is the key, and no hex string stored anywhere (a key candidate) works.
    values = every_text_value(db_url)
    assert key.hex() not in "\n".join(values)
    candidates = {bytes.fromhex(v) for v in values if re.fullmatch(r"(?:[0-9a-f]{2}){16,}", v)}
    for guess in candidates:
        assert brute_force(stored, guess) == set()
    assert rows(db_url, "SELECT value FROM settings WHERE name = 'ip_hash_key'") == []
    assert rows(db_url, "SELECT value FROM settings WHERE name = 'ip_hash_key_fingerprint'") == [
        (fingerprint(key),)
    ]


def test_nodes_sharing_a_database_hash_alike_or_refuse(db_url: str, tmp_path: Path) -> None:
    first = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    try:
        msg = first.message(sent_at=ago(3600))
        hit(msg["open_url"], "203.0.113.9", THUNDERBIRD)
    finally:
        first.stop()
    key = (tmp_path / "data" / "ip_hash.key").read_text().strip()

    # Another machine: its own data directory, the key given as a setting.
    other = tmp_path / "other"
    other.mkdir()
    second = start_server(
        db_url,
        other,
        key=first.key,
        extra_args=["--trust-proxy", "127.0.0.0/8"],
        env={"MAILBEACON_DATA_DIR": str(other / "data"), "MAILBEACON_IP_HASH_KEY": key},
    )
    try:
        hit(msg["open_url"].replace(first.url, second.url), "203.0.113.9", THUNDERBIRD)
    finally:
        second.stop()
    hashes = rows(db_url, "SELECT ip_hash FROM events ORDER BY id")
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    assert not (other / "data" / "ip_hash.key").exists()  # the setting was used, no file made

    # A node with no key, or another key, refuses in one line rather than
    # hashing in a way no other node does.
    bare = {"MAILBEACON_DATA_DIR": str(tmp_path / "bare")}
    said = serve_refuses(db_url, bare)
    assert len(said.splitlines()) == 1, said
    assert "ip_hash.key" in said and "MAILBEACON_IP_HASH_KEY" in said
    said = serve_refuses(db_url, {**bare, "MAILBEACON_IP_HASH_KEY": "ab" * 32})
    assert len(said.splitlines()) == 1 and "not the one this database was set up with" in said
    said = serve_refuses(db_url, {**bare, "MAILBEACON_IP_HASH_KEY": "too-short"})
    assert "at least 32 hex characters" in said
    assert not (tmp_path / "bare" / "ip_hash.key").exists()

    # `keys ip-hash` tells which is which; --reset starts over on purpose.
    status = cli("keys", "ip-hash", db=db_url).stdout
    assert status.startswith(f"IP-hash key {fingerprint(bytes.fromhex(key))}")
    assert "copy ip_hash.key" in cli("keys", "ip-hash", db=db_url, env=bare, check=False).stderr
    assert "is now this database's" in cli("keys", "ip-hash", "--reset", db=db_url, env=bare).stdout
    assert (tmp_path / "bare" / "ip_hash.key").exists()
    said = serve_refuses(db_url, {})  # the first node's old key is the odd one out now
    assert "not the one this database was set up with" in said


def test_a_key_left_in_the_database_moves_to_the_file(db_url: str, tmp_path: Path) -> None:
    from mailbeacon.store import keys, make_engine

    legacy = "5e" * 32
    cli("migrate", db=db_url)
    engine = make_engine(db_url)
    keys.set_setting(engine, "ip_hash_key", legacy)  # as versions before 0008 kept it
    engine.dispose()

    srv: Server = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    try:
        msg = srv.message(sent_at=ago(3600))
        hit(msg["open_url"], "192.0.2.33", THUNDERBIRD)
        assert "moved the IP-hash key out of the database" in srv.output()
    finally:
        srv.stop()
    key_file = tmp_path / "data" / "ip_hash.key"
    assert key_file.read_text().strip() == legacy
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert rows(db_url, "SELECT value FROM settings WHERE name = 'ip_hash_key'") == []
    # Hashes made after the move match those made before it.
    assert rows(db_url, "SELECT ip_hash FROM events") == [
        (digest(bytes.fromhex(legacy), "192.0.2.33"),)
    ]
