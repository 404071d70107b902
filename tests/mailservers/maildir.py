"""Reading (and bulk-filling) Dovecot's maildirs straight from disk.

Reading files changes nothing on the server: no \\Recent is claimed, no
message moves from new/ to cur/, which is what "flags unchanged" tests need.
"""

from __future__ import annotations

import email
import email.policy
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

# Maildir info letters Dovecot writes after ":2," and the IMAP flags they
# stand for; lowercase letters are keywords numbered in `dovecot-keywords`.
SYSTEM_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
FLAG_LETTERS = {flag: letter for letter, flag in SYSTEM_FLAGS.items()}


@dataclass(frozen=True)
class StoredMessage:
    """One message as it lies in a maildir."""

    recipient: str  # the mailbox owner, user@domain
    key: str  # the maildir name without its flags: stable while flags change
    flags: frozenset[str]  # IMAP flags (\Seen, ...) and keywords; never \Recent
    raw: bytes = field(repr=False)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)


def folder(home: Path, mailbox: str = "INBOX") -> Path:
    """Maildir++ layout (Dovecot's default): INBOX is ~/Maildir, others ~/Maildir/.Name."""
    base = home / "Maildir"
    return base if mailbox.upper() == "INBOX" else base / ("." + mailbox.replace("/", "."))


def _keywords(directory: Path) -> dict[str, str]:
    try:
        lines = (directory / "dovecot-keywords").read_text().splitlines()
    except FileNotFoundError:
        return {}
    out = {}
    for line in lines:
        index, _, name = line.partition(" ")
        if index.isdigit():
            out[chr(ord("a") + int(index))] = name
    return out


def _flags(info: str, keywords: dict[str, str]) -> frozenset[str]:
    return frozenset(SYSTEM_FLAGS.get(c) or keywords.get(c, c) for c in info)


def read(recipient: str, directory: Path) -> list[StoredMessage]:
    """Messages in one maildir folder, oldest delivery first."""
    keywords = _keywords(directory)
    found: list[tuple[str, StoredMessage]] = []
    for sub in ("new", "cur"):
        try:
            names = os.listdir(directory / sub)
        except FileNotFoundError:
            continue
        for name in names:
            try:
                raw = (directory / sub / name).read_bytes()
            except FileNotFoundError:
                continue  # Dovecot moved it (new/ -> cur/, or a flag change) meanwhile
            key, _, info = name.partition(":2,")
            msg = StoredMessage(recipient, key, _flags(info, keywords), raw)
            found.append((key, msg))
    # Names start with "<unix seconds>.M<microseconds>P<pid>": sort by that.
    return [m for _, m in sorted(found, key=lambda kv: _order(kv[0]))]


def _order(key: str) -> tuple[int, int, str]:
    seconds, _, rest = key.partition(".")
    micros = rest[1:].split("P", 1)[0] if rest.startswith("M") else "0"
    return (int(seconds) if seconds.isdigit() else 0, int(micros) if micros.isdigit() else 0, key)


def makedirs_owned(path: Path, uid: int, gid: int) -> None:
    """mkdir -p where every created directory belongs to the mail user (0700,
    as Dovecot makes them), so Dovecot can work in it after us."""
    if path.exists():
        return
    makedirs_owned(path.parent, uid, gid)
    path.mkdir(mode=0o700)
    os.chown(path, uid, gid)


def write(directory: Path, raws: Iterable[bytes], flags: Iterable[str], uid: int, gid: int) -> int:
    """Put messages straight into cur/ (Dovecot gives them UIDs at its next
    sync): 50,000 messages take seconds this way, minutes through LMTP."""
    info = "".join(sorted(FLAG_LETTERS[f] for f in flags))
    for sub in ("tmp", "new", "cur"):
        makedirs_owned(directory / sub, uid, gid)
    now = int(time.time())
    count = 0
    for raw in raws:
        name = f"{now}.M{count}P{os.getpid()}.mailbeacon-test,S={len(raw)}"
        tmp = directory / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, uid, gid)
        tmp.rename(directory / "cur" / f"{name}:2,{info}")
        count += 1
    return count
