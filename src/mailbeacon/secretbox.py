"""Secrets the store must keep in a form it can read back (an upstream SMTP
password, an IMAP password), sealed with a key that never enters the database.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``): a stolen database
or backup alone reveals no password. The key comes from the ``secret_key``
setting (``MAILBEACON_SECRET_KEY``), else from ``secret.key`` in the data
directory, created 0600 the first time something is sealed. Several nodes
must share one key (set it in the environment of each).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from mailbeacon.config import Settings

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The key is missing, malformed or not the one the stored secrets were sealed with.

    The message is one line that says what to do next."""


class SecretBox:
    def __init__(self, key: bytes | str, where: str = "the secret key") -> None:
        self.where = where
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{where} is not a Fernet key (44 characters of url-safe base64); "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SecretKeyError(
                f"stored secrets do not open with {self.where}: restore the key they were "
                "sealed with (MAILBEACON_SECRET_KEY or secret.key in the data directory), "
                "or enter the passwords again (`mailbeacon senders set ADDR --upstream URL`)"
            ) from None


def key_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE


# Key files read, by path: (inode, mtime, size) when read, and the key. The
# relay reads the key for every message; a stat is a tenth of opening and
# reading the file (~0.1 ms of CPU per message in bench/relay.py).
_read: dict[str, tuple[tuple[int, int, int], str]] = {}


def read_key(settings: Settings) -> tuple[str, str]:
    """The key for ``settings`` and where it comes from (SecretKeyError when none)."""
    if settings.secret_key:
        return settings.secret_key.strip(), "MAILBEACON_SECRET_KEY"
    path = key_path(settings)
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        where = str(path)
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        known = _read.get(where)
        if known is None or known[0] != version:
            known = (version, path.read_text().strip())
            _read[where] = known
        return known[1], where
    raise SecretKeyError(
        f"no secret key ({path} is missing and MAILBEACON_SECRET_KEY is not set): "
        "restore the key the stored passwords were sealed with, or enter them again "
        "(`mailbeacon senders set ADDR --upstream URL`)"
    )


def load(settings: Settings, *, create: bool = False) -> SecretBox:
    """The box for ``settings``. ``create`` writes a new key file when there is
    no key at all (only when sealing: opening with a fresh key cannot work)."""
    path = key_path(settings)
    if not create or settings.secret_key or path.is_file():
        return SecretBox(*read_key(settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes creating the key at once must not end up with two keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return SecretBox(path.read_text().strip(), str(path))
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return SecretBox(key, str(path))
