"""`mailbeacon networks ...` and `mailbeacon reclassify`."""

from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from mailbeacon.classify.networks import FORMATS, OFFICIAL_LISTS, SCOPES
from mailbeacon.cli.base import app, err, networks_app, open_store, out, parse_time, settings
from mailbeacon.hits import relabel as reclassifier
from mailbeacon.messages import NotFound, resolve_campaign
from mailbeacon.store import networks as network_store
from mailbeacon.timefmt import iso


def fetch_official(name: str, timeout: float = 30.0) -> bytes:
    """Download an official list (never called in tests; the caller stores it)."""
    url, _, _ = OFFICIAL_LISTS[name]
    if "endpoints.office.com" in url:  # microsoft_eop, outlook_web
        url += f"?clientrequestid={uuid.uuid4()}"
    req = urllib.request.Request(url, headers={"User-Agent": "mailbeacon (network list update)"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body


@networks_app.command("list")
def networks_list() -> None:
    """Show the loaded lists, their size and age (builtin lists apply when none is loaded)."""
    engine = open_store(settings())
    rows = network_store.list_info(engine)
    table = Table("name", "scope", "ranges", "skipped", "loaded", "age", "source")
    now = time.time()
    for r in rows:
        age_days = (now - r["loaded_at"]) / 86400
        table.add_row(
            r["name"],
            r["scope"],
            str(r["ranges"]),
            str(r["skipped"]),
            iso(r["loaded_at"]) or "",
            f"{age_days:.1f} d",
            r["source"],
        )
    loaded = {r["name"] for r in rows}
    from mailbeacon.classify.networks import BUILTIN_LISTS

    for name, (scope, cidrs) in BUILTIN_LISTS.items():
        if name not in loaded:
            table.add_row(
                name, scope, str(len(cidrs)), "0", "builtin", "-", "docs/classification.md"
            )
    out.print(table)
    stale = [r["name"] for r in rows if now - r["loaded_at"] > 30 * 86400]
    if stale:
        out.print(
            f"[yellow]older than 30 days:[/] {', '.join(stale)}; run `mailbeacon networks update`"
        )


@networks_app.command("load")
def networks_load(
    name: Annotated[str, typer.Argument(help="List name, e.g. apple_egress or my_scanners.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The list file.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"One of {', '.join(FORMATS)}. "
            "Default: the official format for official names, else cidr.",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            help=f"One of {', '.join(SCOPES)}: which hits the "
            "list may condemn. Default: the official scope, else all."
        ),
    ] = None,
) -> None:
    """Load a list from a file (the official formats or one CIDR per line)."""
    fmt = fmt or (OFFICIAL_LISTS[name][1] if name in OFFICIAL_LISTS else "cidr")
    if fmt not in FORMATS:
        err.print(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    if scope is not None and scope not in SCOPES:
        err.print(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        raise typer.Exit(2)
    engine = open_store(settings())
    try:
        result = network_store.save_list(
            engine, name, fmt, file.read_text("utf-8-sig"), source=str(file), scope=scope
        )
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    out.print(
        f"{name}: {result.loaded} ranges loaded ({result.skipped} skipped), scope "
        f"{result.scope}; running servers use it within 10 s"
    )


@networks_app.command("update")
def networks_update(
    names: Annotated[
        list[str] | None, typer.Argument(help="Lists to fetch (default: all official).")
    ] = None,
) -> None:
    """Fetch the official lists (needs internet) and store them."""
    engine = open_store(settings())
    failed = 0
    for name in names or list(OFFICIAL_LISTS):
        if name not in OFFICIAL_LISTS:
            err.print(
                f"{name}: not an official list ({', '.join(OFFICIAL_LISTS)}); "
                "use `networks load` for your own files"
            )
            failed += 1
            continue
        url, fmt, _scope = OFFICIAL_LISTS[name]
        try:
            with out.status(f"fetching {name} from {url}"):
                body = fetch_official(name)
            result = network_store.save_list(
                engine, name, fmt, body.decode("utf-8-sig"), source=url
            )
        except Exception as exc:  # noqa: BLE001 - one list failing must not stop the others
            err.print(
                f"{name}: {exc}. The previous copy (if any) stays in use; load a file "
                "with `mailbeacon networks load` if this machine has no internet."
            )
            failed += 1
            continue
        out.print(f"{name}: {result.loaded} ranges ({result.skipped} skipped)")
    if failed:
        raise typer.Exit(1)


@networks_app.command("remove")
def networks_remove(name: str) -> None:
    """Drop a loaded list (a builtin list of the same name applies again)."""
    engine = open_store(settings())
    if not network_store.remove_list(engine, name):
        err.print(f"no loaded list named {name!r}; see `mailbeacon networks list`")
        raise typer.Exit(1)
    out.print(f"removed {name}")


@app.command()
def reclassify(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign (name).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only hits at or after this time (ISO 8601).")
    ] = None,
) -> None:
    """Recompute labels after rules or network lists changed (raw hits never change)."""
    engine = open_store(settings())
    try:
        with engine.connect() as conn:
            cid = resolve_campaign(conn, campaign, create=False)
    except NotFound as exc:
        err.print(f"{exc}; see `mailbeacon campaign list`")
        raise typer.Exit(1) from None
    when = parse_time(since, "--since")
    networks = network_store.load_set(engine)
    total = reclassifier.count(engine, cid, when)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    ) as bar:
        task = bar.add_task("reclassifying", total=total)
        result = reclassifier.run(
            engine, networks, campaign_id=cid, since=when, progress=lambda n: bar.advance(task, n)
        )
    out.print(f"{result['events']} hits reclassified, {result['changed']} labels changed")
