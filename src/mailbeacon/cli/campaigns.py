"""`mailbeacon campaign archive|unarchive|delete`: tidying up campaigns."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy import Engine

from mailbeacon.cli.base import campaign_app, err, open_store, out, settings
from mailbeacon.reports.messages import BadQuery, campaign_id_of
from mailbeacon.store import messages as store
from mailbeacon.store import privacy

CampaignArg = Annotated[str, typer.Argument(help="The campaign's id or name.")]


def _campaign(engine: Engine, which: str) -> int:
    try:
        with engine.connect() as conn:
            cid = campaign_id_of(conn, which)
    except BadQuery as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    assert cid is not None
    return cid


def _archive(which: str, archived: bool) -> None:
    engine = open_store(settings())
    cid = _campaign(engine, which)
    with engine.begin() as conn:
        row = store.set_archived(conn, cid, archived)
    assert row is not None
    if archived:
        out.print(
            f"campaign {cid} ({row['name']}) archived: hidden from lists "
            f"(`campaign list --archived` shows it; `campaign unarchive {cid}` brings it back)"
        )
    else:
        out.print(f"campaign {cid} ({row['name']}) is back in the lists")


@campaign_app.command("archive")
def campaign_archive(campaign: CampaignArg) -> None:
    """Hide a campaign from lists; its messages keep recording hits."""
    _archive(campaign, True)


@campaign_app.command("unarchive")
def campaign_unarchive(campaign: CampaignArg) -> None:
    """Show an archived campaign in the lists again."""
    _archive(campaign, False)


@campaign_app.command("delete")
def campaign_delete(
    campaign: CampaignArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a campaign with its messages, their hits, rollups and deliveries."""
    engine = open_store(settings())
    cid = _campaign(engine, campaign)
    with engine.connect() as conn:
        row = next(r for r in store.list_campaigns(conn, True) if r["id"] == cid)
    what = f"campaign {cid} ({row['name']}) and its {row['messages']} messages with all their hits"
    if not yes:
        if not sys.stdin.isatty():
            err.print(f"[red]not deleting {what}[/]: add --yes to delete without asking")
            raise typer.Exit(1)
        if not typer.confirm(f"Delete {what}? This cannot be undone.", default=False):
            err.print("nothing deleted")
            raise typer.Exit(1)
    done = privacy.campaign_delete(engine, cid)
    if done is None:  # deleted by someone else meanwhile
        err.print(f"[red]campaign {cid} no longer exists[/]")
        raise typer.Exit(1)
    out.print(
        f"deleted campaign {cid} ({row['name']}): {done['messages']} messages, "
        f"{done['events']} events, {done['deliveries']} deliveries"
    )
