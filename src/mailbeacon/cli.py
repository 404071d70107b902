"""The command line: ``mailbeacon [--db URL] COMMAND``.

Every command that touches the store brings its schema up to date first, so
``keys create`` works on a fresh machine before the first ``serve``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from mailbeacon import config
from mailbeacon.service import Invalid, NotFound, create_message, resolve_campaign
from mailbeacon.store import events as event_store
from mailbeacon.store import keys, make_engine, upgrade
from mailbeacon.store import messages as store
from mailbeacon.timefmt import iso, parse

app = typer.Typer(
    help="Self-hosted email open and click tracking with honest labels.\n\n"
    "Start with `mailbeacon serve`, then `mailbeacon keys create --name me` for an API key.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys for the HTTP API, and the token signing keys.", no_args_is_help=True)
message_app = typer.Typer(help="Create tracked messages.", no_args_is_help=True)
campaign_app = typer.Typer(help="Group messages into campaigns.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(message_app, name="message")
app.add_typer(campaign_app, name="campaign")

out = Console()
err = Console(stderr=True)


class State:
    db: str | None = None
    data_dir: str | None = None


state = State()


@app.callback()
def main_options(
    db: Annotated[str | None, typer.Option("--db", envvar="MAILBEACON_DB", show_envvar=True,
        help="Database URL: sqlite:///path.db or postgresql://user@host/db. "
             "Default: mailbeacon.db in the data directory.")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", envvar="MAILBEACON_DATA_DIR",
        show_envvar=True, help="Where the default SQLite file and mailbeacon.toml live.")] = None,
) -> None:
    state.db = db
    state.data_dir = data_dir


def settings(**flags: Any) -> config.Settings:
    return config.load(db=state.db, data_dir=state.data_dir, **flags)


def open_store(s: config.Settings) -> Engine:
    if s.database_url.startswith("sqlite:///"):
        Path(s.database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(s.database_url, sqlite_sync=s.sqlite_sync)
    try:
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001 - say what to do, not a traceback
        err.print(f"[red]cannot open the database {_redact(s.database_url)}:[/] {exc}")
        err.print("Check --db / MAILBEACON_DB, and that the database server is running.")
        raise typer.Exit(2) from None
    return engine


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


# --- serve --------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.  [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.  [default: 8000]")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url",
        help="Public URL of the tracking domain used in every generated link, e.g. "
             "https://t.yourdomain.com. A subdomain of your own From domain is the "
             "deliverability-safe choice.")] = None,
    trust_proxy: Annotated[list[str] | None, typer.Option("--trust-proxy",
        help="CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable).")] = None,
    store_ip: Annotated[str | None, typer.Option("--store-ip",
        help="'truncated' (default: /24 or /48 network plus a keyed hash) or 'full'.")] = None,
    sqlite_sync: Annotated[str | None, typer.Option("--sqlite-sync",
        help="'full' (default: fsync each group commit) or 'normal' (survives crashes, "
             "not power loss).")] = None,
) -> None:
    """Run the tracking server, the API and the dashboard."""
    import uvicorn

    from mailbeacon.web.app import build
    from mailbeacon.web.node import Node

    s = settings(host=host, port=port, base_url=base_url, trust_proxy=tuple(trust_proxy or ()),
                 store_ip=store_ip, sqlite_sync=sqlite_sync)
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = open_store(s)
    node = Node(s, engine)
    node.prepare()  # first start: signing key and IP-hash key are generated here
    keys.set_setting(engine, "base_url", s.public_base_url)
    asgi = build(s, node)
    # Plain print, not rich: the banner must not be re-wrapped in narrow logs.
    print(f"mailbeacon listening on http://{s.host}:{s.port}")
    print(f"  tracking links use {s.public_base_url}")
    print(f"  database {_redact(s.database_url)}")
    if not keys.list_api_keys(engine):
        print("  no API key yet: run `mailbeacon keys create --name NAME`")
    print("  press Ctrl-C to stop (hits already answered are on disk)", flush=True)
    uvicorn.Server(
        uvicorn.Config(
            asgi,
            host=s.host,
            port=s.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            # X-Forwarded-For is handled by --trust-proxy, never implicitly.
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_level=s.log_level,
            timeout_graceful_shutdown=10,
            backlog=4096,
        )
    ).run()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this on start)."""
    s = settings()
    open_store(s)
    out.print(f"schema is current in {_redact(s.database_url)}")


# --- keys ---------------------------------------------------------------------


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")]) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    engine = open_store(settings())
    key, secret = keys.create_api_key(engine, name)
    out.print(f"Created API key {key.id} ({name}). Copy it now, it is not shown again:", highlight=False)
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    engine = open_store(settings())
    table = Table("id", "name", "prefix", "created", "last used", "status")
    for k in keys.list_api_keys(engine):
        table.add_row(str(k.id), k.name, k.prefix + "…", iso(k.created_at) or "",
                      iso(k.last_used_at) or "never", "revoked" if k.revoked_at else "active")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or name.")]) -> None:
    """Revoke an API key: requests with it get 401 at once."""
    engine = open_store(settings())
    n = keys.revoke_api_key(engine, key)
    if not n:
        err.print(f"no active API key with id or name {key!r}; see `mailbeacon keys list`")
        raise typer.Exit(1)
    out.print(f"revoked {n} key(s)")


@keys_app.command("rotate-signing")
def keys_rotate() -> None:
    """Start signing new links with a fresh key; mail already sent keeps working."""
    engine = open_store(settings())
    kid = keys.create_signing_key(engine)
    out.print(f"signing key {kid} now signs new links; older keys still verify "
              f"(running servers pick it up within 10 s)")


@keys_app.command("signing")
def keys_signing(
    retire: Annotated[int | None, typer.Option(help="Retire this signing key id: links signed "
                                               "with it stop being recorded.")] = None,
) -> None:
    """List the token signing keys, or retire one."""
    engine = open_store(settings())
    if retire is not None:
        if not keys.retire_signing_key(engine, retire):
            err.print(f"no active signing key {retire}")
            raise typer.Exit(1)
        out.print(f"retired signing key {retire}")
    table = Table("id", "created", "status")
    for k in keys.list_signing_keys(engine):
        table.add_row(str(k["id"]), iso(k["created_at"]) or "", "retired" if k["retired_at"] else "active")
    out.print(table)


# --- campaigns and messages -----------------------------------------------------


@campaign_app.command("new")
def campaign_new(name: str) -> None:
    """Create a campaign."""
    engine = open_store(settings())
    try:
        with engine.begin() as conn:
            row = store.create_campaign(conn, name)
    except store.Conflict as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    out.print(f"campaign {row['id']}: {name}")


@campaign_app.command("list")
def campaign_list() -> None:
    """List campaigns with their message counts."""
    engine = open_store(settings())
    with engine.connect() as conn:
        rows = store.list_campaigns(conn)
    table = Table("id", "name", "messages", "created")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], str(r["messages"]), iso(r["created_at"]) or "")
    out.print(table)


def _base_url(engine: Engine, s: config.Settings) -> str:
    if s.base_url:
        return s.public_base_url
    return keys.get_setting(engine, "base_url") or s.public_base_url


@message_app.command("new")
def message_new(
    to: Annotated[str, typer.Option("--to", help="Recipient address.")],
    subject: Annotated[str | None, typer.Option(help="Subject, for your reports.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign name (created if new).")] = None,
    variant: Annotated[str | None, typer.Option(help="Variant label within the campaign.")] = None,
    sent_at: Annotated[str | None, typer.Option("--sent-at",
        help="When the mail leaves (ISO 8601 or 'now'). Leave out while composing.")] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="A URL to track (repeatable).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url",
        help="Tracking domain for the URLs (default: the one `serve` last used).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Create a tracked message: prints the pixel snippet and the tracked links."""
    s = settings(base_url=base_url)
    engine = open_store(s)
    signer = keys.ensure_signer(engine)
    when = time.time() if sent_at == "now" else parse(sent_at)
    try:
        with engine.begin() as conn:
            cid = resolve_campaign(conn, campaign)
            msg = create_message(conn, signer, _base_url(engine, s), recipient=to, subject=subject,
                                 campaign_id=cid, variant=variant, sent_at=when, links=link or [])
    except (Invalid, NotFound) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(msg, indent=2))
        return
    out.print(f"message {msg['id']} to {msg['recipient']}")
    out.print("Paste this pixel at the end of the email body (HTML):")
    print(msg["pixel_html"])
    if msg["links"]:
        out.print("Tracked links (use each in place of the URL after it):")
        for lk in msg["links"]:
            # Plain lines, not a table: a table would cut long URLs people copy.
            print(f"{lk['position']}. {lk['tracked_url']}\n   -> {lk['url']}")


# --- events -------------------------------------------------------------------


def _event_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "message", "at", "kind", "method", "label", "ip", "link", "user agent")
    for e in rows:
        table.add_row(str(e["id"]), str(e["message_id"]), e["at"], e["kind"], e["method"],
                      e["label"] or "-", e["ip"], str(e["link_position"] or ""),
                      (e["user_agent"] or "")[:60])
    return table


@app.command()
def events(
    message: Annotated[int | None, typer.Option("--message", help="Only this message's events.")] = None,
    limit: Annotated[int, typer.Option(help="How many (oldest first after --after).")] = 100,
    after: Annotated[int, typer.Option(help="Only events with an id above this.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List recorded hits as a table, or tail them live with --follow."""
    engine = open_store(settings())

    def fetch(since: int, n: int) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return event_store.list_events(conn, message_id=message, after=since, limit=n)

    def show(rows: list[dict[str, Any]]) -> None:
        if as_json:
            for e in rows:
                print(json.dumps(e), flush=True)
        elif rows:
            out.print(_event_table(rows))

    if not follow:
        rows = fetch(after, limit)
        if not rows and not as_json:
            out.print("no events yet")
        show(rows)
        return
    last = after
    if not after:  # start from the newest, like `tail -f`
        with engine.connect() as conn:
            from sqlalchemy import func, select

            from mailbeacon.store.schema import events as ev

            last = int(conn.execute(select(func.coalesce(func.max(ev.c.id), 0))).scalar_one())
    if not as_json:
        out.print("following new events (Ctrl-C to stop)")
    try:
        while True:
            rows = fetch(last, 500)
            if rows:
                last = rows[-1]["id"]
                show(rows)
            else:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()
