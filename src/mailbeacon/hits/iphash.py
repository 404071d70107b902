"""The key of the IP hash, kept outside the database.

A hit stores the client's /24 (or /48) and HMAC-SHA256(key, full address).
With the key in the same database, anyone holding a copy of it could try the
256 addresses of each /24 and get every address back (13 of 13 did). So the
key lives in a file in the data directory (``ip_hash.key``, mode 0600, made
on first start) or in the setting ``ip_hash_key`` (``MAILBEACON_IP_HASH_KEY``)
for several nodes sharing one PostgreSQL database. The database keeps only a
fingerprint (an HMAC of a fixed text under the key: it confirms a key, it
cannot give one back), so a node started with another key, or with none
while the others have one, refuses to start instead of making hashes that
match nobody's (docs/privacy.md, docs/deployment.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import Engine

from mailbeacon.store import keys

log = logging.getLogger("mailbeacon")

KEY_FILE = "ip_hash.key"
FINGERPRINT = "ip_hash_key_fingerprint"  # settings row: which key the hashes were made with
LEGACY = "ip_hash_key"  # settings row where versions before migration 0008 kept the key itself
KEY_BYTES = 32
MIN_HEX = 32  # a configured key has at least 128 bits: nothing to brute-force


class IPKeyError(SystemExit):
    """The node cannot hash addresses consistently with the others: a one-line
    message, and ``serve`` stops before it answers a single hit."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, b"mailbeacon ip_hash key fingerprint", hashlib.sha256).hexdigest()[:16]


def key_path(data_dir: str) -> Path:
    return Path(data_dir).expanduser() / KEY_FILE


def load(engine: Engine, data_dir: str, configured: str = "") -> bytes:
    """This node's IP-hash key, checked against the database's fingerprint.

    Order: the setting ``ip_hash_key``, else the data-directory file, else a
    key still in the database from an older version (moved to the file, then
    deleted there), else a new key in a new file, unless the database says a
    key was already set up elsewhere.
    """
    path = key_path(data_dir)
    key = _parse(configured, "the setting ip_hash_key") if configured else _read(path)
    legacy = keys.get_setting(engine, LEGACY)
    if key is None and legacy is not None:
        key = _create(path, bytes.fromhex(legacy))
        log.warning(
            "moved the IP-hash key out of the database into %s (mode 0600); back it up, and "
            "give other nodes of this database the same file or ip_hash_key",
            path,
        )
    known = keys.get_setting(engine, FINGERPRINT)
    if key is None:
        if known is not None:
            raise IPKeyError(
                f"no IP-hash key on this node, but the database was set up with key {known}: "
                f"copy {KEY_FILE} from another node to {path} or set MAILBEACON_IP_HASH_KEY "
                "(`mailbeacon keys ip-hash --reset` starts a new key instead)"
            )
        key = _create(path, secrets.token_bytes(KEY_BYTES))
        log.info("made a new IP-hash key in %s", path)
    mine = fingerprint(key)
    if known is None:
        known = keys.ensure_setting(engine, FINGERPRINT, mine)  # a racing node may win
    if known != mine:
        where = "ip_hash_key" if configured else str(path)
        raise IPKeyError(
            f"the IP-hash key in {where} (fingerprint {mine}) is not the one this database "
            f"was set up with ({known}): use the same key on every node, or run "
            "`mailbeacon keys ip-hash --reset` to start a new one"
        )
    if legacy is not None:
        if bytes.fromhex(legacy) != key:
            log.warning("the IP-hash key changed: hits hashed before cannot be matched to new ones")
        keys.delete_setting(engine, LEGACY)
    return key


def status(
    engine: Engine, data_dir: str, configured: str = ""
) -> tuple[str, str | None, str | None]:
    """(where this node's key is, its fingerprint or None, the database's or None),
    changing nothing."""
    path = key_path(data_dir)
    if configured:
        key: bytes | None = _parse(configured, "the setting ip_hash_key")
        where = "the setting ip_hash_key"
    else:
        key, where = _read(path), str(path)
    return where, fingerprint(key) if key else None, keys.get_setting(engine, FINGERPRINT)


def reset(engine: Engine, data_dir: str, configured: str = "") -> tuple[str, str]:
    """Make this node's key the database's (a new file when none is configured).

    Hashes stored before stop matching new ones: a repeat visitor across the
    reset looks new. Returns (where the key is, its fingerprint).
    """
    path = key_path(data_dir)
    if configured:
        key, where = _parse(configured, "the setting ip_hash_key"), "the setting ip_hash_key"
    else:
        path.unlink(missing_ok=True)
        key, where = _create(path, secrets.token_bytes(KEY_BYTES)), str(path)
    keys.set_setting(engine, FINGERPRINT, fingerprint(key))
    keys.delete_setting(engine, LEGACY)
    return where, fingerprint(key)


def _parse(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(text) < MIN_HEX or not key:
        raise IPKeyError(
            f"{where} must be at least {MIN_HEX} hex characters (`openssl rand -hex 32` makes one)"
        )
    return key


def _read(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IPKeyError(f"cannot read the IP-hash key {path}: {exc}") from None
    if path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users; run chmod 600 %s", path, path)
    return _parse(text, str(path))


def _create(path: Path, key: bytes) -> bytes:
    """Write the key to a new file, readable by this user only; if another
    process on this machine made the file first, use its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = _read(path)
        assert found is not None
        return found
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the database copy is deleted
    return key
