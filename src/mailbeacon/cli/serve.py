"""`mailbeacon serve` and `migrate`."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
import ssl
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from sqlalchemy import Engine
from starlette.types import ASGIApp

from mailbeacon.cli.base import (
    app,
    err,
    open_store,
    out,
    redact,
    settings,
    state,
)
from mailbeacon.config import Settings
from mailbeacon.malloc import fix_mmap_threshold
from mailbeacon.store import keys

# --- serve --------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on.  [default: 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on; 0 picks a free one and prints it.  [default: 8000]"),
    ] = None,
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
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Server processes sharing the port; 0 is one per CPU core.  [default: 1]",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database, as the global --db (either place works)."),
    ] = None,
) -> None:
    """Run the tracking server, the API and the dashboard.

    Examples:

      mailbeacon serve

      mailbeacon serve --base-url https://t.example.com --trust-proxy 10.0.0.0/8

      mailbeacon serve --port 0 --workers 2
    """
    if db:
        state.db = db
    import uvicorn

    from mailbeacon.node import Node
    from mailbeacon.store.db import make_engine
    from mailbeacon.store.messages import skip_unsure_ids
    from mailbeacon.web.app import serving
    from mailbeacon.web.server import ServerLimits, uvicorn_options
    from mailbeacon.web.workers import supervise, worker_count

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
        workers=workers,
    )
    if s.workers < 0:
        err.print("--workers must be 0 (one per core) or more")
        raise typer.Exit(2)
    logging.basicConfig(
        level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    fix_mmap_threshold()  # before anything big is built (mailbeacon/malloc.py); workers inherit it
    _refuse_damaged(s)
    engine = open_store(s, create=True)
    skip_unsure_ids(engine)  # before any worker hands out a message id
    # Bound before anything is built, so port 0 works: the port the kernel
    # picked is in the banner and, without --base-url, in every generated link.
    sock = _bind(s.host, s.port)
    s = dataclasses.replace(s, port=sock.getsockname()[1])
    # The relay's ports too, now: one in use is a one-line error here, not a
    # traceback from the app's startup, and no port is handed out twice.
    _check_relay_tls(s)
    relay_sockets = {
        port: _bind(s.relay_host, port, flag)
        for port, flag in ((s.relay_port, "--smtp-port"), (s.relay_smtps_port, "--smtps-port"))
        if port
    }
    node = Node(s, engine, relay_sockets=relay_sockets)
    node.prepare()  # first start: signing key and IP-hash key are generated here
    keys.set_setting(engine, "base_url", s.public_base_url)
    asgi = serving(s, node)
    # Plain print, not rich: the banner must not be re-wrapped in narrow logs.
    print(f"mailbeacon listening on http://{_hostport(s.host, s.port)}")
    print(f"  tracking links use {s.public_base_url}")
    print(f"  database {redact(s.database_url)}")
    if not keys.list_api_keys(engine):
        print("  no API key yet: run `mailbeacon keys create --name NAME`")
    print(f"  dashboard at {s.public_base_url}/" + _dashboard_hint(engine))
    hint = _proxy_hint(s)
    if hint:
        print(hint)
    limits = ServerLimits(
        max_header_bytes=s.max_header_bytes,
        header_timeout=s.header_timeout,
        keepalive_timeout=s.keepalive_timeout,
        max_connections=s.max_connections,
    )
    # Streamed pixels (read time) are connections too, counted apart.
    streams = s.read_time_streams if s.read_time else 0
    wanted = limits.max_connections + streams + FD_RESERVE
    fds = _raise_fd_limit(wanted)
    if fds < wanted:
        print(
            f"  warning: only {fds} open files allowed; max_connections {limits.max_connections} "
            f"and read_time_streams {streams} need {wanted} (raise `ulimit -n` or lower them)"
        )
    count = worker_count(s.workers)
    if count > 1:
        print(f"  {count} worker processes", flush=True)
    print("  press Ctrl-C to stop (hits already answered are on disk)", flush=True)

    def config(app: ASGIApp) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            loop="uvloop",
            lifespan="on",
            # X-Forwarded-For is handled by --trust-proxy, never implicitly.
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_level=s.log_level,
            timeout_graceful_shutdown=10,
            backlog=LISTEN_BACKLOG,
            **uvicorn_options(limits),
        )

    if count == 1:
        uvicorn.Server(config(asgi)).run(sockets=[sock])
        return
    # Several processes: each builds its own engine and node after the fork
    # (a connection or a thread must never cross one); the parent supervises.
    engine.dispose()

    def serve_one(index: int) -> None:
        child = Node(
            s, make_engine(s.database_url, sqlite_sync=s.sqlite_sync), primary=index == 0,
            relay_sockets=relay_sockets,
        )  # fmt: skip
        uvicorn.Server(config(serving(s, child))).run(sockets=[sock])

    raise typer.Exit(supervise(count, serve_one))


LISTEN_BACKLOG = 4096  # what the listening sockets queue before accept

# Descriptors beyond the connections: the database, logs, webhook and SMTP clients.
FD_RESERVE = 128


def _raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit toward ``wanted`` (up to the hard limit);
    return the limit now in force. Past it, accept() fails and nobody gets in."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


def _bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """A listening socket; a clear one-line error if it cannot be had.

    Listening at once: a socket only bound (SO_REUSEADDR) let a later bind of
    the same port succeed too, so the HTTP port the kernel picked for port 0
    could also become the relay's SMTP port, and the two servers shared it.
    Connections wait in the backlog until the server starts accepting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        zero = " (0 picks a free one)" if flag == "--port" else ""
        err.print(
            f"[red]cannot listen on {_hostport(host, port)}:[/] {exc.strerror or exc}; "
            f"choose another {flag}{zero} or stop what uses it."
        )
        raise typer.Exit(2) from None
    sock.set_inheritable(True)
    return sock


def _check_relay_tls(s: Settings) -> None:
    """The relay's TLS options, checked before anything starts (one line, exit 2)."""
    if s.relay_smtps_port and not (s.relay_tls_cert and s.relay_tls_key):
        err.print("[red]--smtps-port needs --smtp-tls-cert and --smtp-tls-key[/] (PEM files).")
        raise typer.Exit(2)
    if not s.relay_tls_cert:
        return
    from mailbeacon.relay.server import tls_context

    try:
        tls_context(s.relay_tls_cert, s.relay_tls_key)
    except (OSError, ssl.SSLError) as exc:
        err.print(
            f"[red]cannot use --smtp-tls-cert {s.relay_tls_cert} / --smtp-tls-key "
            f"{s.relay_tls_key}:[/] {exc.strerror or exc}; give a PEM certificate and its key."
        )
        raise typer.Exit(2) from None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy_hint(s: Settings) -> str | None:
    """Links on a public name, a private listen address, no trusted proxy: almost
    surely a reverse proxy serve does not know about (web/proxycheck.py notices
    one for certain at its first forwarded request)."""
    if s.trust_proxy or not s.base_url:
        return None
    try:
        listen = ipaddress.ip_address(s.host)
    except ValueError:
        return None
    public = urlsplit(s.public_base_url).hostname or ""
    if not (listen.is_loopback or listen.is_private) or public in (s.host, "localhost"):
        return None
    return (
        f"  warning: links go to {s.public_base_url} but serve listens on {s.host} without "
        "--trust-proxy: behind a reverse proxy every hit seems to come from the proxy (and "
        "counts as self once you use the dashboard through it); pass the proxy's address, "
        "e.g. --trust-proxy 127.0.0.1/32"
    )


def _dashboard_hint(engine: Engine) -> str:
    from mailbeacon.store.accounts import has_users

    return (
        ""
        if has_users(engine)
        else (" (no user yet: run `mailbeacon users create --email you@example.com`)")
    )


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this on start)."""
    s = settings()
    _refuse_damaged(s)
    open_store(s, create=True)
    out.print(f"schema is current in {redact(s.database_url)}")


@app.command()
def init() -> None:
    """Create the database (or bring it up to date) and say what to do next."""
    s = settings()
    _refuse_damaged(s)
    engine = open_store(s, create=True)
    from mailbeacon.store.accounts import has_users

    out.print(f"database ready: {redact(s.database_url)}", soft_wrap=True)
    if not has_users(engine):
        out.print("next: `mailbeacon users create --email you@example.com` (a dashboard sign-in)")
    out.print("then: `mailbeacon serve` and open http://127.0.0.1:8000/")


def _refuse_damaged(s: Settings) -> None:
    """Stop with one line saying what to do when the SQLite file is damaged."""
    from mailbeacon.store import make_engine
    from mailbeacon.store.db import damage

    prefix = "sqlite:///"
    if not s.check_on_start or not s.database_url.startswith(prefix):
        return
    path = s.database_url[len(prefix) :]
    if not Path(path).is_file():
        return  # a new database
    engine = make_engine(s.database_url, pool=False)
    try:
        problem = damage(engine)
    finally:
        engine.dispose()
    if problem:
        err.print(
            f"[red]the database {path} is damaged[/] (quick_check: {problem[:200]}); "
            f"restore it from a backup, or salvage what is readable with "
            f"`sqlite3 {path} .recover | sqlite3 {path}.recovered` and start with "
            f"--db sqlite:///{path}.recovered",
            soft_wrap=True,
        )
        raise typer.Exit(2)
