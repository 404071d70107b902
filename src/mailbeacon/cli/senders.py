"""`mailbeacon senders ...`: who may send through the SMTP relay, and where to."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailbeacon.cli.base import app, err, open_store, out, settings
from mailbeacon.relay import accounts
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.store import outgoing
from mailbeacon.store import senders as store
from mailbeacon.timefmt import iso

senders_app = typer.Typer(
    help="Senders: SMTP logins for the relay (`serve --smtp-port`), each with its own "
    "upstream server.",
    no_args_is_help=True,
)
app.add_typer(senders_app, name="senders")

UpstreamOption = Annotated[
    str,
    typer.Option(
        "--upstream",
        help="The sender's own outgoing server: smtp://[user[:password]@]host[:port] "
        "(STARTTLS required unless ?tls=none; port 587) or smtps://... (implicit TLS; port 465).",
    ),
]
TrackOption = Annotated[
    str | None,
    typer.Option(
        "--track",
        help="off, opens (default: the deliverability-safe choice for 1-to-1 mail), "
        "clicks or all (links in the safe mode).",
    ),
]


def _fail(exc: Exception) -> typer.Exit:
    err.print(str(exc), highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _no_sender(email: str) -> typer.Exit:
    err.print(f"no sender {email}; see `mailbeacon senders list`", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@senders_app.command("create")
def senders_create(
    email: Annotated[str, typer.Option("--email", help="The address the sender sends as.")],
    upstream: UpstreamOption,
    track: TrackOption = None,
) -> None:
    """Create a sender and print its SMTP password (once: only a hash is kept)."""
    s = settings()
    engine = open_store(s)
    try:
        _sid, password = accounts.create(engine, s, email, upstream, track or "opens")
    except (ValueError, SecretKeyError) as exc:
        raise _fail(exc) from None
    login = accounts.check_address(email)
    out.print(
        f"created sender {login}; the mail client sends with login {login} and this "
        "password (copy it now, it is not shown again):",
        highlight=False,
    )
    print(password)


@senders_app.command("list")
def senders_list() -> None:
    """List senders (never a password)."""
    engine = open_store(settings())
    table = Table("email", "upstream", "track", "also", "rate/h", "created")
    for snd in store.all_senders(engine):
        table.add_row(
            snd.email,
            snd.upstream,
            snd.track,
            ", ".join(snd.also),
            "default" if snd.rate_per_hour is None else str(snd.rate_per_hour or "none"),
            iso(snd.created_at) or "",
        )
    out.print(table)


@senders_app.command("remove")
def senders_remove(email: Annotated[str, typer.Argument(help="The sender's address.")]) -> None:
    """Remove a sender; copies still queued for it are dropped."""
    engine = open_store(settings())
    if not store.remove(engine, email.strip().lower()):
        raise _no_sender(email)
    out.print(f"removed sender {email.strip().lower()}", highlight=False)


@senders_app.command("set")
def senders_set(
    email: Annotated[str, typer.Argument(help="The sender's address.")],
    upstream: Annotated[str | None, typer.Option("--upstream", help="A new upstream URL.")] = None,
    track: TrackOption = None,
    also: Annotated[
        list[str] | None,
        typer.Option(
            "--also",
            help="Another From address this login may use (repeatable; replaces the list; "
            "--also '' clears it).",
        ),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option("--rate", help="Copies per hour this sender may submit (0: no limit)."),
    ] = None,
) -> None:
    """Change a sender's upstream, tracking, extra From addresses or rate limit."""
    s = settings()
    engine = open_store(s)
    try:
        ok = accounts.change(
            engine, s, email, upstream_url=upstream, track=track, also=also, rate_per_hour=rate
        )
    except (ValueError, SecretKeyError) as exc:
        raise _fail(exc) from None
    if not ok:
        raise _no_sender(email)
    out.print(f"updated sender {email.strip().lower()}", highlight=False)


@senders_app.command("password")
def senders_password(
    email: Annotated[str, typer.Argument(help="The sender's address.")],
) -> None:
    """Give a sender a new SMTP password (the old one stops working) and print it."""
    engine = open_store(settings())
    try:
        password = accounts.reset_password(engine, email)
    except ValueError as exc:
        raise _fail(exc) from None
    if password is None:
        raise _no_sender(email)
    out.print(f"new SMTP password for {email.strip().lower()}:", highlight=False)
    print(password)


# `--status` words: the dashboard's states, "given-up" for the shell, and the
# queue's raw columns (pending = queued or retrying, failed = bounced or given up).
_RAW = ("pending", "failed")


@senders_app.command("queue")
def senders_queue(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only copies in this state: queued, retrying, sent, bounced, given-up; "
            "or pending (queued or retrying), failed (bounced or given up).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
) -> None:
    """The relay's copies and their state (pending ones are retried with backoff).

    Example: `mailbeacon senders queue --status retrying --limit 20`.
    """
    word = status.strip().lower().replace("-", " ") if status is not None else None
    if word is not None and word not in outgoing.STATES and word not in _RAW:
        err.print(
            f"[red]--status {status}: not a state[/]; use one of queued, retrying, sent, "
            "bounced, given-up, pending or failed",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    engine = open_store(settings())
    names = {snd.id: snd.email for snd in store.all_senders(engine)}
    table = Table("id", "sender", "recipient", "state", "tries", "next try", "last reply")
    raw = word if word in _RAW else None
    state = word if word is not None and raw is None else None
    for c in outgoing.copies(engine, status=raw, state=state, limit=limit):
        shown = outgoing.state_of(c)
        table.add_row(
            str(c["id"]),
            names.get(c["sender_id"], "?") + (" (DSN)" if c["kind"] == "dsn" else ""),
            c["recipient"],
            shown,
            str(c["attempts"]),
            (iso(c["next_at"]) or "") if shown in ("queued", "retrying") else "",
            " ".join(x for x in (str(c["last_code"] or ""), c["last_error"] or "") if x)[:60],
        )
    out.print(table)
