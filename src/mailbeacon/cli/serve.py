"""`mailbeacon serve` and `migrate`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from sqlalchemy import Engine

from mailbeacon.cli.base import (
    app,
    open_store,
    out,
    redact,
    settings,
)
from mailbeacon.store import keys

# --- serve --------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on.  [default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.  [default: 8000]")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Public URL of the tracking domain used in every generated link, e.g. "
            "https://t.yourdomain.com. A subdomain of your own From domain is the "
            "deliverability-safe choice.",
        ),
    ] = None,
    trust_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-proxy",
            help="CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable).",
        ),
    ] = None,
    store_ip: Annotated[
        str | None,
        typer.Option(
            "--store-ip",
            help="'truncated' (default: /24 or /48 network plus a keyed hash) or 'full'.",
        ),
    ] = None,
    sqlite_sync: Annotated[
        str | None,
        typer.Option(
            "--sqlite-sync",
            help="'full' (default: fsync each group commit) or 'normal' (survives crashes, "
            "not power loss).",
        ),
    ] = None,
    # --- the SMTP relay (relay/): off unless a port is given
    smtp_port: Annotated[
        int | None,
        typer.Option("--smtp-port", help="Serve SMTP submission for senders on this port."),
    ] = None,
    smtp_host: Annotated[
        str | None, typer.Option("--smtp-host", help="Address the SMTP relay listens on.")
    ] = None,
    smtp_tls_cert: Annotated[
        str | None, typer.Option("--smtp-tls-cert", help="PEM certificate for STARTTLS/smtps.")
    ] = None,
    smtp_tls_key: Annotated[
        str | None, typer.Option("--smtp-tls-key", help="PEM private key of that certificate.")
    ] = None,
    smtps_port: Annotated[
        int | None, typer.Option("--smtps-port", help="Serve implicit-TLS SMTP on this port.")
    ] = None,
) -> None:
    """Run the tracking server, the API and the dashboard."""
    import uvicorn

    from mailbeacon.web.app import build
    from mailbeacon.web.node import Node

    s = settings(
        host=host,
        port=port,
        base_url=base_url,
        trust_proxy=tuple(trust_proxy or ()),
        store_ip=store_ip,
        sqlite_sync=sqlite_sync,
        relay_port=smtp_port,
        relay_host=smtp_host,
        relay_tls_cert=smtp_tls_cert,
        relay_tls_key=smtp_tls_key,
        relay_smtps_port=smtps_port,
    )
    logging.basicConfig(
        level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = open_store(s)
    node = Node(s, engine)
    node.prepare()  # first start: signing key and IP-hash key are generated here
    keys.set_setting(engine, "base_url", s.public_base_url)
    asgi = build(s, node)
    # Plain print, not rich: the banner must not be re-wrapped in narrow logs.
    print(f"mailbeacon listening on http://{s.host}:{s.port}")
    print(f"  tracking links use {s.public_base_url}")
    print(f"  database {redact(s.database_url)}")
    if not keys.list_api_keys(engine):
        print("  no API key yet: run `mailbeacon keys create --name NAME`")
    print(f"  dashboard at {s.public_base_url}/" + _dashboard_hint(engine))
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


def _dashboard_hint(engine: Engine) -> str:
    from mailbeacon.web.dashboard.accounts import has_users

    return (
        ""
        if has_users(engine)
        else (" (no user yet: run `mailbeacon users create --email you@example.com`)")
    )


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this on start)."""
    s = settings()
    open_store(s)
    out.print(f"schema is current in {redact(s.database_url)}")
