"""`mailbeacon users ...`: who may sign in to the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailbeacon.cli.base import app, err, open_store, out, settings
from mailbeacon.store import accounts
from mailbeacon.timefmt import iso

users_app = typer.Typer(help="Dashboard users (sign-in accounts).", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option("--email", help="The address used to sign in.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="The password (prompted for when left out: safer, "
            "it stays out of the shell history).",
        ),
    ] = None,
) -> None:
    """Create a dashboard user (the first one is how you sign in at all)."""
    engine = open_store(settings())
    try:
        uid = accounts.create_user(engine, email, _password(password))
    except (ValueError, accounts.UserExists) as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    out.print(
        f"created user {uid} ({email.strip().lower()}); sign in at the dashboard, /login",
        highlight=False,
    )


@users_app.command("list")
def users_list() -> None:
    """List dashboard users."""
    engine = open_store(settings())
    table = Table("id", "email", "created", "last sign-in")
    for u in accounts.list_users(engine):
        table.add_row(
            str(u["id"]),
            str(u["email"]),
            iso(u["created_at"]) or "",
            iso(u["last_login_at"]) or "never",
        )
    out.print(table)


@users_app.command("password")
def users_password(
    email: Annotated[str, typer.Option("--email")],
    password: Annotated[str | None, typer.Option("--password")] = None,
) -> None:
    """Set a user's password (ends all their sessions)."""
    engine = open_store(settings())
    try:
        ok = accounts.set_password(engine, email, _password(password))
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    if not ok:
        err.print(f"no user {email}")
        raise typer.Exit(1)
    out.print("password changed; every session of this user was ended")


@users_app.command("delete")
def users_delete(email: Annotated[str, typer.Option("--email")]) -> None:
    """Delete a user and end their sessions."""
    engine = open_store(settings())
    if not accounts.delete_user(engine, email):
        err.print(f"no user {email}")
        raise typer.Exit(1)
    out.print(f"deleted {email}")
