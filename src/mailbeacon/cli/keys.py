"""`mailbeacon keys ...`: API keys and signing keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailbeacon.cli.base import (
    err,
    keys_app,
    open_store,
    out,
    settings,
)
from mailbeacon.config import default_data_dir
from mailbeacon.store import keys
from mailbeacon.timefmt import iso

# --- keys ---------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    engine = open_store(settings())
    key, secret = keys.create_api_key(engine, name)
    out.print(
        f"Created API key {key.id} ({name}). Copy it now, it is not shown again:", highlight=False
    )
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    engine = open_store(settings())
    table = Table("id", "name", "prefix", "created", "last used", "status")
    for k in keys.list_api_keys(engine):
        table.add_row(
            str(k.id),
            k.name,
            k.prefix + "…",
            iso(k.created_at) or "",
            iso(k.last_used_at) or "never",
            "revoked" if k.revoked_at else "active",
        )
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
    out.print(
        f"signing key {kid} now signs new links; older keys still verify "
        f"(running servers pick it up within 10 s)"
    )


@keys_app.command("signing")
def keys_signing(
    retire: Annotated[
        int | None,
        typer.Option(help="Retire this signing key id: links signed with it stop being recorded."),
    ] = None,
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
        table.add_row(
            str(k["id"]), iso(k["created_at"]) or "", "retired" if k["retired_at"] else "active"
        )
    out.print(table)


@keys_app.command("ip-hash")
def keys_ip_hash(
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Make this node's key the database's, with a new ip_hash.key unless "
            "ip_hash_key is set. Hits hashed before no longer match new ones.",
        ),
    ] = False,
) -> None:
    """Where the IP-hash key is (never in the database) and whether it is the
    one the database was set up with."""
    from mailbeacon.hits import iphash

    s = settings()
    engine = open_store(s)
    data_dir = s.data_dir or default_data_dir()
    if reset:
        where, fp = iphash.reset(engine, data_dir, s.ip_hash_key)
        out.print(f"IP-hash key {fp} in {where} is now this database's; restart running servers")
        return
    where, mine, known = iphash.status(engine, data_dir, s.ip_hash_key)
    if known is not None and mine == known:
        out.print(f"IP-hash key {mine} in {where}, as the database expects", highlight=False)
        return
    if mine is None:
        err.print(
            f"no IP-hash key in {where}"
            + (
                f"; the database was set up with {known}: copy {iphash.KEY_FILE} from a node"
                if known
                else "; serve makes one on first start"
            ),
            highlight=False,
        )
    else:
        err.print(
            f"IP-hash key {mine} in {where}; the database expects {known or 'none yet'}",
            highlight=False,
        )
    raise typer.Exit(1)
