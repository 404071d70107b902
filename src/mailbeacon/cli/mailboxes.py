"""`mailbeacon mailboxes add|list|remove`: watch a sender's inbox for replies."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailbeacon.cli.base import app, err, open_store, out, settings
from mailbeacon.mailboxes import service
from mailbeacon.secretbox import SecretKeyError

mailboxes_app = typer.Typer(
    help="Watch a sender's inbox, read-only over IMAP, for replies, auto-replies and bounces.",
    no_args_is_help=True,
)
app.add_typer(mailboxes_app, name="mailboxes")


@mailboxes_app.command("add")
def mailboxes_add(
    email: Annotated[str, typer.Option("--email", help="The mailbox's address (the sender's).")],
    imap: Annotated[
        str,
        typer.Option(
            "--imap",
            help="imap://user:password@host:port (STARTTLS; add ?tls=none for plain IMAP) "
            "or imaps://user:password@host:993. The password is stored encrypted.",
        ),
    ],
) -> None:
    """Watch a mailbox (read-only: EXAMINE and BODY.PEEK; no flag ever changes).
    Adding an address again replaces its URL and password."""
    s = settings()
    engine = open_store(s)
    try:
        box, created = service.add(engine, s, email, imap)
    except (service.BadURL, SecretKeyError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    verb = "Watching" if created else "Updated"
    out.print(
        f"{verb} {box.email} ({box.imap_url}): replies show up within seconds while "
        "`mailbeacon serve` runs; see `mailbeacon mailboxes list`.",
        highlight=False,
    )


@mailboxes_app.command("list")
def mailboxes_list() -> None:
    """Watched mailboxes: state (new, ok, failing), last check, last error."""
    engine = open_store(settings())
    rows = service.listing(engine)
    if not rows:
        out.print("No mailboxes; add one with `mailbeacon mailboxes add --email ADDR --imap URL`.")
        return
    table = Table("email", "imap", "state", "last check (UTC)", "error")
    for r in rows:
        error = r["last_error"] or ""
        if r["next_try_at"]:
            error += f" (next try {r['next_try_at'][:19].replace('T', ' ')})"
        table.add_row(
            r["email"],
            r["imap"],
            r["state"],
            (r["last_check_at"] or "never")[:19].replace("T", " "),
            error,
        )
    out.print(table)


@mailboxes_app.command("remove")
def mailboxes_remove(email: Annotated[str, typer.Argument(help="The mailbox's address.")]) -> None:
    """Stop watching a mailbox and forget its password (recorded replies stay)."""
    engine = open_store(settings())
    if not service.remove(engine, email):
        err.print(f"no mailbox {email!r}; see `mailbeacon mailboxes list`")
        raise typer.Exit(1)
    out.print(f"No longer watching {email.strip().lower()}.", highlight=False)
