"""`mailbeacon remind MESSAGE --if not_replied --after 3d` and `mailbeacon reminders ...`."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from mailbeacon import reminders
from mailbeacon.cli.base import app, err, open_store, out, settings
from mailbeacon.store import reminders as store

reminders_app = typer.Typer(
    help="Reminders: list, cancel, and the per-sender defaults.", no_args_is_help=True
)
app.add_typer(reminders_app, name="reminders")

IfOption = Annotated[
    str, typer.Option("--if", help="not_opened, not_clicked or not_replied.", show_default=False)
]
AfterOption = Annotated[
    str,
    typer.Option(
        "--after", help="From sent_at: 3d, 36h, 90m, 1w, or '2 business days' (skip weekends)."
    ),
]
TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="IANA time zone for days (default: the timezone setting)."),
]


@app.command("remind")
def remind(
    message: Annotated[int, typer.Argument(help="The message id.")],
    if_: IfOption,
    after: AfterOption,
    tz: TzOption = None,
) -> None:
    """Nudge me (email, webhook message.reminder, dashboard) if MESSAGE is not
    opened, clicked or replied in time. Cancelled by the event if it comes first."""
    s = settings()
    engine = open_store(s)
    try:
        (made,) = reminders.create(
            engine, condition=if_, after=after, tz=tz or s.timezone, message_id=message
        )
    except (reminders.Invalid, LookupError) as exc:
        err.print(f"[red]{str(exc).strip(chr(39))}[/]")
        raise typer.Exit(2) from None
    out.print(
        f"Reminder {made['id']}: message {message} {made['if'].replace('_', ' ')} "
        f"by {made['due_at']} ({made['tz']}).",
        highlight=False,
    )


@reminders_app.command("list")
def reminders_list(
    message: Annotated[int | None, typer.Option("--message", help="Only this message.")] = None,
) -> None:
    """Reminders, newest first: due time, state, and why one was cancelled."""
    engine = open_store(settings())
    table = Table("id", "msg", "if", "after", "due (UTC)", "state")
    for r in store.rows(engine, message_id=message, limit=200):
        p = reminders.public(r)
        state = p["state"] + (f" ({p['reason']})" if p["reason"] else "")
        table.add_row(str(p["id"]), str(p["message_id"]), p["if"], p["after"],
                      (p["due_at"] or "")[:16].replace("T", " "), state)  # fmt: skip
    out.print(table)


@reminders_app.command("cancel")
def reminders_cancel(reminder: Annotated[int, typer.Argument(help="The reminder id.")]) -> None:
    """Cancel a pending reminder."""
    engine = open_store(settings())
    if not store.cancel(engine, reminder, time.time()):
        err.print(f"no pending reminder {reminder}; see `mailbeacon reminders list`")
        raise typer.Exit(1)
    out.print(f"Reminder {reminder} cancelled.")


@reminders_app.command("default")
def reminders_default(
    sender: Annotated[
        str, typer.Argument(help="A relay sender's address, or '*' for every tracked message.")
    ],
    if_: Annotated[
        str | None, typer.Option("--if", help="not_opened, not_clicked or not_replied.")
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="e.g. 3d or '2 business days'.")
    ] = None,
    tz: TzOption = None,
    off: Annotated[bool, typer.Option("--off", help="Remove the sender's default.")] = False,
) -> None:
    """Set (or with --off remove) a sender's standing reminder: every message
    they send from now on gets one."""
    s = settings()
    engine = open_store(s)
    if off:
        if not store.remove_default(engine, sender.strip().lower()):
            err.print(f"{sender} has no default reminder")
            raise typer.Exit(1)
        out.print(f"No default reminder for {sender} any more.", highlight=False)
        return
    if not if_ or not after:
        err.print("give --if and --after (or --off to remove the default)")
        raise typer.Exit(2)
    try:
        d = reminders.set_default(engine, sender, if_, after, tz or s.timezone)
    except reminders.Invalid as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    out.print(
        f"Every message from {d.sender} gets a reminder: {d.condition.replace('_', ' ')} "
        f"after {d.after} ({d.tz}).",
        highlight=False,
    )
