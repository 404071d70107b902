"""The read-only IMAP session (IMAPClient): EXAMINE, SEARCH, BODY.PEEK, IDLE.

Read-only by construction: the folder is opened with EXAMINE (IMAPClient's
``select_folder(readonly=True)``), so the server refuses any flag change for
this session, and every FETCH is a BODY.PEEK (RFC 3501 6.4.5: PEEK never
sets \\Seen). What is fetched: the header fields in ``classify.FIELDS``; for
a delivery status notification also its BODYSTRUCTURE, its
message/delivery-status part (machine-written fields) and the Message-ID of
the message it returns. Never a text part.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailbeacon.mailboxes.classify import FIELDS
from mailbeacon.mailboxes.url import ImapURL

HEADERS = f"BODY.PEEK[HEADER.FIELDS ({' '.join(f.upper() for f in FIELDS)})]"
# A delivery-status part is a few hundred bytes per recipient; 16 KB is
# plenty and bounds what a hostile report can make us read.
PART_BYTES = 16384
FETCH_CHUNK = 200  # UIDs per FETCH: keeps each answer a few hundred KB
TIMEOUT = 30.0


class AuthFailed(Exception):
    """The server refused the login: retrying soon will not help."""


class Lost(Exception):
    """The connection failed or the server went away: reconnect with backoff."""


@dataclass(frozen=True)
class Folder:
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class Fetched:
    uid: int
    at: float | None  # INTERNALDATE: when the server received it
    header: bytes


class Session:
    """One connection to one mailbox's folder, opened read-only."""

    def __init__(self, url: ImapURL, folder: str = "INBOX", ca_file: str = "") -> None:
        self.url = url
        self.folder_name = folder
        self.ca_file = ca_file
        self.client: IMAPClient | None = None
        self.can_idle = False

    def open(self) -> Folder:
        url = self.url
        context = ssl.create_default_context(cafile=self.ca_file or None)
        try:
            client = IMAPClient(
                url.host,
                port=url.port,
                ssl=url.tls == "implicit",
                ssl_context=context,
                timeout=TIMEOUT,
            )
            self.client = client
            client.normalise_times = False  # INTERNALDATE with its zone
            if url.tls == "starttls":
                client.starttls(context)
            try:
                client.login(url.user, url.password)
            except LoginError as exc:
                raise AuthFailed(_text(exc)) from None
            self.can_idle = client.has_capability("IDLE")
            info = client.select_folder(self.folder_name, readonly=True)  # EXAMINE
        except (AuthFailed, Lost):
            self.close()
            raise
        except (OSError, IMAPClientError, ssl.SSLError) as exc:
            self.close()
            raise Lost(_text(exc)) from None
        return Folder(
            uidvalidity=int(info.get(b"UIDVALIDITY", 0)),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
        )

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def _c(self) -> IMAPClient:
        if self.client is None:
            raise Lost("not connected")
        return self.client

    # -- reading ---------------------------------------------------------------

    def uids_after(self, last: int) -> list[int]:
        """UIDs above ``last`` (``N:*`` always names the newest message, so filter)."""
        return sorted(u for u in self._call(self._c().search, ["UID", f"{last + 1}:*"]) if u > last)

    def search(self, criteria: Sequence[Any]) -> list[int]:
        return sorted(self._call(self._c().search, list(criteria)))

    def headers(self, uids: Sequence[int]) -> list[Fetched]:
        out: list[Fetched] = []
        for i in range(0, len(uids), FETCH_CHUNK):
            part = list(uids[i : i + FETCH_CHUNK])
            got = self._call(self._c().fetch, part, [HEADERS, "INTERNALDATE"])
            for uid in part:
                item = got.get(uid)
                if item is None:
                    continue  # expunged meanwhile
                out.append(Fetched(uid, _seconds(item.get(b"INTERNALDATE")), _section(item)))
        return out

    def report_parts(self, uid: int) -> tuple[bytes | None, bytes | None]:
        """A DSN's delivery-status part and the header of the message it returns."""
        got = self._call(self._c().fetch, [uid], ["BODYSTRUCTURE"]).get(uid)
        if got is None:
            return None, None
        status_no, returned_no, returned_type = _report_sections(got.get(b"BODYSTRUCTURE"))
        items = []
        if status_no:
            items.append(f"BODY.PEEK[{status_no}]<0.{PART_BYTES}>")
        if returned_no and returned_type == "message/rfc822":
            items.append(f"BODY.PEEK[{returned_no}.HEADER.FIELDS (MESSAGE-ID)]")
        elif returned_no:  # text/rfc822-headers: the part is only header fields
            items.append(f"BODY.PEEK[{returned_no}]<0.{PART_BYTES}>")
        if not items:
            return None, None
        data = self._call(self._c().fetch, [uid], items).get(uid, {})
        status = returned = None
        for key, value in data.items():
            name = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
            if not name.startswith("BODY[") or not isinstance(value, bytes):
                continue
            section = name[5:].split("]", 1)[0]
            if section == status_no:
                status = value
            elif section.split(".", 1)[0] == returned_no:
                returned = value
        return status, returned

    # -- waiting ---------------------------------------------------------------

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds`` for new mail: IDLE when the server has it,
        else a plain wait (the caller then polls). True when the server spoke
        of new messages; Lost when it went away; returns early on ``stop``."""
        if not self.can_idle:
            stop.wait(seconds)
            return False
        client = self._c()
        self._call(client.idle)
        deadline = time.monotonic() + seconds
        news = False
        try:
            while not stop.is_set() and not news:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                slot = min(left, 1.0)  # how fast a stop is noticed
                started = time.monotonic()
                responses = self._call(client.idle_check, slot)
                for resp in responses:
                    if len(resp) > 1 and resp[1] in (b"EXISTS", b"RECENT"):
                        news = True
                    elif resp and resp[0] == b"BYE":
                        raise Lost(f"the server said BYE: {resp[1:]!r}")
                if not responses and time.monotonic() - started < slot / 2:
                    # IMAPClient reads EOF as "no responses" at once.
                    raise Lost("the server closed the connection")
        except Lost:
            self.close()
            raise
        self._call(client.idle_done)
        return news

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (TimeoutError, OSError, IMAPClientError, ssl.SSLError) as exc:
            self.close()
            raise Lost(_text(exc)) from None


def since_criteria(day: date) -> list[Any]:
    return ["SINCE", day]


def or_all(criteria: Sequence[list[Any]]) -> list[Any]:
    """IMAP's OR is binary and prefix: a balanced tree keeps the nesting at
    log2(n) (a chain of 200 ORs is 200 deep)."""
    if len(criteria) == 1:
        return list(criteria[0])
    half = len(criteria) // 2
    return ["OR", *or_all(criteria[:half]), *or_all(criteria[half:])]


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, bytes):
        text = exc.decode("utf-8", "replace")
    return " ".join(text.split())[:300]


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _section(item: dict[bytes, Any]) -> bytes:
    for key, value in item.items():
        if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def _report_sections(body: Any) -> tuple[str | None, str | None, str | None]:
    """Part numbers of the delivery-status part and of the returned message
    in a multipart/report BODYSTRUCTURE (RFC 3464 2: parts 2 and 3, usually)."""
    if body is None or not getattr(body, "is_multipart", False):
        return None, None, None
    status = returned = returned_type = None
    for i, part in enumerate(body[0], start=1):
        if getattr(part, "is_multipart", False):
            continue
        kind = f"{_s(part[0])}/{_s(part[1])}".lower()
        if kind == "message/delivery-status" and status is None:
            status = str(i)
        elif kind in ("message/rfc822", "text/rfc822-headers") and returned is None:
            returned, returned_type = str(i), kind
    return status, returned, returned_type


def _s(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
