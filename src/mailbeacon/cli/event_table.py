"""`mailbeacon events` as a table that fits 80 columns and loses nothing
that tells rows apart: who (the recipient, not a message id), what (open,
the clicked link's path, reply), the label in words, the client. Cells wrap
instead of being cut; the IP and user agent are in ``--json``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from rich import box
from rich.table import Column, Table
from sqlalchemy import Connection

from mailbeacon.store import messages as message_store

# Short words for labels (the dashboard's are sentences); replies use
# human / auto_reply / bounce.
WORDS = {
    ("open", "human_direct"): "person",
    ("open", "human_via_proxy"): "person, via proxy",
    ("open", "machine_prefetch"): "machine prefetch",
    ("open", "security_scanner"): "scanner",
    ("open", "bot_other"): "bot",
    ("open", "self"): "you",
    ("click", "human"): "person",
    ("click", "scanner"): "scanner",
    ("click", "bot"): "bot",
    ("click", "self"): "you",
    ("reply", "human"): "person",
    ("reply", "auto_reply"): "auto-reply",
    ("reply", "bounce"): "bounce",
}


def label_words(kind: str, label: str | None) -> str:
    if label is None:
        return "not labelled yet"
    return WORDS.get((kind, label), label)


def link_path(url: str | None) -> str:
    """The part of a link that tells links apart: its path (and query)."""
    if not url:
        return "?"
    parts = urlsplit(url)
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def who(conn: Connection, message_ids: Iterable[int]) -> dict[int, tuple[str, int | None]]:
    """Recipient and honeypot position of each message (one indexed read)."""
    return message_store.recipients_of(conn, message_ids)


def what(e: dict[str, Any], honeypot: int | None) -> str:
    kind = str(e["kind"])
    if kind == "click":
        if honeypot is not None and e["link_position"] == honeypot:
            text = "click hidden trap link"
        else:
            text = f"click {link_path(e.get('url'))}"
    elif kind == "reply":
        text = "reply"
    else:
        text = "open"
    return text if e.get("method", "GET") == "GET" else f"{text} ({e['method']})"


def event_table(
    rows: list[dict[str, Any]],
    people: dict[int, tuple[str, int | None]],
    header: bool = True,
    with_recipient: bool = True,
) -> Table:
    """id, time, recipient, and "click /pricing · person · Chrome" in one
    cell: two wrapping columns share what the fixed ones leave of 80."""
    cols = [
        Column("id", no_wrap=True, justify="right"),
        Column("at (UTC)", no_wrap=True),
        *([Column("recipient", overflow="fold")] if with_recipient else []),
        Column("what · label · client", overflow="fold"),
    ]
    table = Table(*cols, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_header=header)
    for e in rows:
        mid = int(e["message_id"])
        recipient, honeypot = people.get(mid, (f"message {mid}", None))
        cells = [str(e["id"]), (e["at"] or "")[5:16].replace("T", " ")]
        if with_recipient:
            cells.append(recipient)
        # The client when known, else the user agent (cut: --json has it whole).
        client = e.get("client") or e.get("os") or (e.get("user_agent") or "")[:60]
        parts = [what(e, honeypot), label_words(str(e["kind"]), e["label"])]
        cells.append(" · ".join(parts + ([client] if client else [])))
        table.add_row(*cells)
    return table
