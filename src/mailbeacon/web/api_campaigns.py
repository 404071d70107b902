"""``/api/v1/campaigns``: create, list, archive and delete campaigns (a
module-level router; their reports are in api_reports.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mailbeacon.messages import NotFound
from mailbeacon.node import Node
from mailbeacon.store import messages as store
from mailbeacon.store import privacy
from mailbeacon.store.messages import Conflict
from mailbeacon.timefmt import iso
from mailbeacon.web.api import ERRORS, Auth, DbId, fail
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["campaigns"])


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=store.CAMPAIGN_NAME_MAX)


class Campaign(BaseModel):
    id: int
    name: str
    created_at: str | None
    messages: int = 0
    opened: int = 0  # key figures from the rollups (see docs/reports.md)
    clicked: int = 0
    open_rate: float = 0.0
    click_rate: float = 0.0
    archived_at: str | None = Field(
        default=None, description="when it was archived: hidden from lists unless ?archived=1"
    )


class CampaignDeleted(BaseModel):
    id: int
    deleted: dict[str, int] = Field(
        description="how many messages, events and deliveries went with it",
        examples=[{"messages": 20, "events": 143, "deliveries": 4}],
    )


@router.post(
    "/api/v1/campaigns",
    response_model=Campaign,
    status_code=201,
    responses=ERRORS,
)
def new_campaign(body: CampaignIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        with node.engine.begin() as conn:
            row = store.create_campaign(conn, body.name.strip())
    except Conflict as exc:
        raise fail(exc) from None
    return {**row, "created_at": iso(row["created_at"]), "messages": 0}


@router.get("/api/v1/campaigns", response_model=list[Campaign], responses=ERRORS)
def campaigns(
    node: NodeDep,
    _k: Auth,
    archived: Annotated[bool, Query(description="1: include archived campaigns")] = False,
) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        rows = store.list_campaigns(conn, include_archived=archived)
    return [campaign_out(r) for r in rows]


def campaign_out(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "created_at": iso(r["created_at"]), "archived_at": iso(r.get("archived_at"))}


def archive(node: Node, campaign_id: int, archived: bool) -> dict[str, Any]:
    with node.engine.begin() as conn:
        row = store.set_archived(conn, campaign_id, archived)
    if row is None:
        raise fail(NotFound(f"campaign {campaign_id} does not exist"))
    return campaign_out(row)


@router.post(
    "/api/v1/campaigns/{campaign_id}/archive",
    response_model=Campaign,
    responses=ERRORS,
)
def archive_campaign(campaign_id: DbId, node: NodeDep, _k: Auth) -> dict[str, Any]:
    """Hide a campaign from lists; its messages keep recording hits."""
    return archive(node, campaign_id, True)


@router.post(
    "/api/v1/campaigns/{campaign_id}/unarchive",
    response_model=Campaign,
    responses=ERRORS,
)
def unarchive_campaign(campaign_id: DbId, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return archive(node, campaign_id, False)


@router.delete(
    "/api/v1/campaigns/{campaign_id}",
    response_model=CampaignDeleted,
    responses=ERRORS,
)
def delete_campaign(campaign_id: DbId, node: NodeDep, _k: Auth) -> dict[str, Any]:
    """Delete a campaign with its messages, events, rollups and deliveries."""
    done = privacy.campaign_delete(node.engine, campaign_id)
    if done is None:
        raise fail(NotFound(f"campaign {campaign_id} does not exist"))
    return {"id": campaign_id, "deleted": done}
