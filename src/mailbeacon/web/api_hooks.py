"""Webhooks (``/api/v1/webhooks``) and the live event stream (``/api/v1/stream``)
(a module-level router)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mailbeacon.node import Node
from mailbeacon.notify import EVENT_TYPES, egress, stream
from mailbeacon.store import outbox as ns
from mailbeacon.timefmt import iso
from mailbeacon.web.api import ERRORS, MAX_ID, ApiError, Auth, DbId
from mailbeacon.web.deps import NodeDep

router = APIRouter()


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000, examples=["https://example.com/hooks/mb"])
    events: list[str] = Field(
        min_length=1,
        description="any of: " + ", ".join(EVENT_TYPES),
        examples=[["message.first_open", "message.click"]],
    )


class Webhook(BaseModel):
    id: int
    url: str
    events: list[str]
    created_at: str | None
    secret_prefix: str | None = None
    secret: str | None = Field(
        default=None, description="shown once, at creation: verifies Mailbeacon-Signature"
    )


class Delivery(BaseModel):
    id: int
    channel: str
    webhook_id: int | None
    event_type: str
    event_id: int
    message_id: int
    status: str = Field(description="pending, delivered, failed, skipped or cancelled")
    attempts: int
    created_at: str | None
    next_at: str | None
    delivered_at: str | None
    last_status: int | None
    last_error: str | None
    replay_of: int | None


def check_webhook(url: str, events: list[str], allow_internal: bool) -> None:
    """422 for a URL that is not http(s) or leads to an internal address
    (notify/egress.py: every spelling, and names that resolve there)."""
    try:
        egress.check_url(url, allow_internal)
    except egress.Refused as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ApiError(422, "invalid", f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")


def sse_response(
    node: Node, request: Request, last_event_id: str | None, after: int | None
) -> StreamingResponse:
    start = stream.start_after(node.engine, last_event_id, after)
    return StreamingResponse(
        stream.sse(node.engine, start, is_disconnected=request.is_disconnected),
        media_type="text/event-stream",
        # no-transform/X-Accel-Buffering: proxies must pass each event at once.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/api/v1/webhooks",
    response_model=Webhook,
    status_code=201,
    responses=ERRORS,
    tags=["webhooks"],
    response_model_exclude_none=True,
)
def new_webhook(body: WebhookIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    events = list(dict.fromkeys(body.events))
    check_webhook(body.url, events, node.settings.webhook_allow_internal)
    hook = ns.create_webhook(node.engine, body.url, events)
    return {**hook, "created_at": iso(hook["created_at"])}


@router.get(
    "/api/v1/webhooks",
    response_model=list[Webhook],
    responses=ERRORS,
    tags=["webhooks"],
    response_model_exclude_none=True,
)
def webhooks(node: NodeDep, _k: Auth) -> list[dict[str, Any]]:
    return [{**h, "created_at": iso(h["created_at"])} for h in ns.list_webhooks(node.engine)]


@router.delete(
    "/api/v1/webhooks/{webhook_id}", status_code=204, responses=ERRORS, tags=["webhooks"]
)
def delete_webhook(webhook_id: DbId, node: NodeDep, _k: Auth) -> Response:
    if not ns.delete_webhook(node.engine, webhook_id):
        raise ApiError(404, "not_found", f"webhook {webhook_id} does not exist")
    return Response(status_code=204)


@router.get(
    "/api/v1/webhooks/{webhook_id}/deliveries",
    response_model=list[Delivery],
    responses=ERRORS,
    tags=["webhooks"],
)
def webhook_deliveries(
    webhook_id: DbId, node: NodeDep, _k: Auth, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    if ns.get_webhook(node.engine, webhook_id, deleted=True) is None:
        raise ApiError(404, "not_found", f"webhook {webhook_id} does not exist")
    return ns.deliveries(node.engine, webhook_id=webhook_id, limit=limit)


@router.post(
    "/api/v1/webhooks/deliveries/{delivery_id}/replay",
    response_model=Delivery,
    status_code=202,
    responses=ERRORS,
    tags=["webhooks"],
)
def replay_delivery(delivery_id: DbId, node: NodeDep, _k: Auth) -> dict[str, Any]:
    new_id = ns.replay(node.engine, delivery_id)
    if new_id is None:
        raise ApiError(404, "not_found", f"delivery {delivery_id} does not exist")
    out = ns.get_delivery(node.engine, new_id)
    assert out is not None
    return out


@router.get(
    "/api/v1/stream",
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "server-sent events: `event: hit`, `id:` the event id, "
            "`data:` the event as JSON with its label",
        },
    },
    tags=["events"],
)
def event_stream(
    request: Request,
    node: NodeDep,
    _k: Auth,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="start after this event id (default: now)"),
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """New events as they are recorded, on any node; resumes from Last-Event-ID."""
    return sse_response(node, request, last_event_id, after)
