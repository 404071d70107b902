"""Shared pieces of the command line: the app, global options, store access.

Every command that touches the store brings its schema up to date first, so
``keys create`` works on a fresh machine before the first ``serve``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from mailbeacon import config
from mailbeacon.store import make_engine, upgrade

app = typer.Typer(
    help="Self-hosted email open and click tracking with honest labels.\n\n"
    "Start with `mailbeacon serve`, then `mailbeacon keys create --name me` for an API key.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(
    help="API keys for the HTTP API, and the token signing keys.", no_args_is_help=True
)
message_app = typer.Typer(help="Create, find and show tracked messages.", no_args_is_help=True)
campaign_app = typer.Typer(help="Group messages into campaigns.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(message_app, name="message")
app.add_typer(campaign_app, name="campaign")
networks_app = typer.Typer(
    help="IP range lists (Apple relay egress, Google crawlers, Microsoft EOP, your own) "
    "that the classifier uses.",
    no_args_is_help=True,
)
app.add_typer(networks_app, name="networks")

out = Console()
# soft_wrap: an error is one line however narrow the terminal (the terminal
# wraps it for the eye; a log or a pipe keeps it whole).
err = Console(stderr=True, soft_wrap=True)


class State:
    db: str | None = None
    data_dir: str | None = None


state = State()


@app.callback()
def main_options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="MAILBEACON_DB",
            show_envvar=True,
            help="Database: a file path, sqlite:////absolute/path.db (four slashes; "
            "sqlite:///x.db is relative to the current directory) or "
            "postgresql://user@host/db. Default: mailbeacon.db in the data directory. "
            "Only serve, migrate and init create a database that does not exist.",
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            envvar="MAILBEACON_DATA_DIR",
            show_envvar=True,
            help="Where the default SQLite file and mailbeacon.toml live.",
        ),
    ] = None,
) -> None:
    state.db = db
    state.data_dir = data_dir


def settings(**flags: Any) -> config.Settings:
    return config.load(db=state.db, data_dir=state.data_dir, **flags)


# Only these create a database that is not there yet; any other command
# refuses, so a mistyped --db is an error instead of a new, empty database
# ("no campaigns": the user thinks their data is gone).
CREATES_DATABASE = ("serve", "migrate", "init")


def open_store(s: config.Settings, create: bool = False) -> Engine:
    """The store, schema brought up to date; or a one-line error and exit 2.

    A SQLite file named by --db / MAILBEACON_DB / the config file must exist
    unless ``create`` (serve, migrate, init); the default file in the data
    directory may always be made, so a fresh install works from any command.
    """
    url = s.database_url
    if not url.startswith(("sqlite:", "postgresql")):
        err.print(
            f"[red]--db {redact(url)}: not a database mailbeacon can use[/]; "
            "give a file path, sqlite:////absolute/path.db or postgresql://user@host/db",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///") :]).expanduser().resolve()
        if s.db and not create and not path.exists():
            err.print(
                f"[red]no database at {path}[/] (from --db / MAILBEACON_DB): check the path; "
                f"to start a new one there, run `mailbeacon --db {path} init`",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = make_engine(url, sqlite_sync=s.sqlite_sync)
    except Exception as exc:  # noqa: BLE001 - a URL SQLAlchemy cannot use: say so in one line
        err.print(
            f"[red]--db {redact(url)}: {exc}[/]; use a file path, sqlite:////absolute/path.db "
            "or postgresql://user@host/db",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    try:
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - say what to do, not a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(
            f"[red]cannot open the database {redact(url)}:[/] {first[:300]}; "
            "check --db / MAILBEACON_DB, and that the database server is running",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    return engine


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


# The tracking domain for generated URLs, for commands that make links.
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Tracking domain for the URLs (default: the one `serve` last used)."
    ),
]


def tracking_base_url(engine: Engine, s: config.Settings) -> str:
    """--base-url / MAILBEACON_BASE_URL, else what the last `serve` used, else host:port."""
    if s.base_url:
        return s.public_base_url
    from mailbeacon.store import keys

    return keys.get_setting(engine, "base_url") or s.public_base_url


def parse_time(text: str | None, option: str) -> float | None:
    """A time option (ISO 8601, unix seconds or 'now'), or a one-line error and exit 2."""
    import time

    from mailbeacon.timefmt import parse

    if text is not None and text.strip().lower() == "now":
        return time.time()
    try:
        return parse(text)
    except ValueError as exc:
        err.print(
            f"[red]{option}: {exc}[/] (use ISO 8601 such as 2024-06-01T09:30:00Z, or 'now')",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
