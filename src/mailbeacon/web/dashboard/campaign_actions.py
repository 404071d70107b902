"""Tidying campaigns from the dashboard: archive, bring back, delete.

Deleting asks first on a page of its own (no script: the pages allow only
'self' scripts, and a plain form works everywhere), naming what goes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.node import Node
from mailbeacon.store import messages as message_store
from mailbeacon.store import privacy
from mailbeacon.web.dashboard.auth import Post, User
from mailbeacon.web.dashboard.render import not_found, page
from mailbeacon.web.deps import NodeDep

router = APIRouter()


def archive(campaign_id: int, archived: bool, node: Node) -> Response:
    with node.engine.begin() as conn:
        row = message_store.set_archived(conn, campaign_id, archived)
    if row is None:
        return Response("no such campaign", status_code=404)
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/archive", include_in_schema=False)
def archive_campaign(campaign_id: int, _posted: Post, node: NodeDep) -> Response:
    return archive(campaign_id, True, node)


@router.post("/campaigns/{campaign_id}/unarchive", include_in_schema=False)
def unarchive_campaign(campaign_id: int, _posted: Post, node: NodeDep) -> Response:
    return archive(campaign_id, False, node)


@router.get("/campaigns/{campaign_id}/delete", response_class=HTMLResponse, include_in_schema=False)
def confirm_delete(request: Request, campaign_id: int, _user: User, node: NodeDep) -> HTMLResponse:
    with node.engine.connect() as conn:
        rows = message_store.list_campaigns(conn, include_archived=True)
    camp = next((r for r in rows if r["id"] == campaign_id), None)
    if camp is None:
        return not_found(request, f"There is no campaign {campaign_id}.")
    return page(request, "campaign_delete.html", {"campaign": camp})


@router.post("/campaigns/{campaign_id}/delete", include_in_schema=False)
def delete_campaign(campaign_id: int, _posted: Post, node: NodeDep) -> Response:
    if privacy.campaign_delete(node.engine, campaign_id) is None:
        return Response("no such campaign", status_code=404)
    return RedirectResponse("/", status_code=303)
