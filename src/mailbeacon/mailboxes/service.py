"""Adding, listing and removing watched mailboxes: one piece the CLI and the
API share, so a mailbox looks the same however it was added."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from mailbeacon.config import Settings
from mailbeacon.mailboxes.url import BadURL, parse
from mailbeacon.secretbox import load as load_box
from mailbeacon.store import mailboxes as store
from mailbeacon.store.mailboxes import Mailbox
from mailbeacon.timefmt import iso

__all__ = ["BadURL", "add", "public", "listing", "remove"]


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not email or len(email) > 320 or "@" not in email:
        raise BadURL("--email must be the mailbox's address, such as ana@example.com")
    return email


def add(engine: Engine, settings: Settings, email: str, imap: str) -> tuple[Mailbox, bool]:
    """Add (or replace) a mailbox; its password is sealed with the secret key.
    Raises BadURL (or SecretKeyError) with a one-line message."""
    email = check_email(email)
    url = parse(imap)
    sealed = load_box(settings, create=True).seal(url.password)
    _, created = store.upsert(engine, email, url.public, sealed)
    box = store.get(engine, email)
    assert box is not None
    return box, created


def remove(engine: Engine, email: str) -> bool:
    return store.remove(engine, email.strip().lower())


def listing(engine: Engine) -> list[dict[str, Any]]:
    return [public(b) for b in store.all_mailboxes(engine)]


def public(box: Mailbox) -> dict[str, Any]:
    """A mailbox as the API and CLI show it: never its password."""
    return {
        "email": box.email,
        "imap": box.imap_url,
        "state": box.state,
        "last_check_at": iso(box.last_check_at),
        "last_error": box.last_error,
        "failures": box.failures,
        "next_try_at": iso(box.next_try_at) if box.state == "failing" else None,
        "watched_by": box.lease_owner,
    }
