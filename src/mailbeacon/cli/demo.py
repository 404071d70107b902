"""`mailbeacon demo`: a campaign with realistic traffic, to see every view filled."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from mailbeacon.cli.base import app, err, open_store, settings


def _reachable(url: str) -> str:
    """``--url`` as a base URL, checked before anything is created: a server
    that is down must not leave a half-made demo campaign behind."""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok:
        err.print(
            f"[red]--url {url!r} is not a server address[/] such as http://127.0.0.1:8000",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    base = url.strip().rstrip("/")
    try:
        httpx.get(base + "/healthz", timeout=5)
    except httpx.HTTPError as exc:
        err.print(
            f"[red]no mailbeacon server answers at {base}[/] ({exc or type(exc).__name__}): "
            "start one with `mailbeacon serve --trust-proxy 127.0.0.1/32`, "
            "or leave out --url and demo starts its own",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    return base


@app.command()
def demo(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Drive a server that is already running (it must share --db and run with "
            "--trust-proxy 127.0.0.1/32). Default: start one on a free port for the demo.",
        ),
    ] = None,
) -> None:
    """Create a demo campaign and send realistic opens and clicks through the real
    tracking endpoints: Outlook, Apple Mail with and without Privacy Protection,
    Gmail's proxy, a scanner, a bot, and your own opens."""
    from mailbeacon.demo import drive, run_with_server
    from mailbeacon.store.accounts import has_users

    s = settings()
    engine = open_store(s)
    if url:
        url = _reachable(url)
    say = print  # plain print: rich would re-wrap long lines
    say("Sending demo traffic:")
    try:
        done = drive(engine, url, say) if url else run_with_server(s.database_url, engine, say)
    except (RuntimeError, httpx.HTTPError) as exc:
        err.print(f"[red]demo failed:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    say(
        f"\nCreated campaign {done['campaign_id']} ({done['name']}) with "
        f"{done['messages']} messages."
    )
    say(
        "See it: run `mailbeacon serve`, sign in, and open "
        f"{s.public_base_url}/campaigns/{done['campaign_id']}"
    )
    if not has_users(engine):
        say("No dashboard user yet: `mailbeacon users create --email you@example.com`")
