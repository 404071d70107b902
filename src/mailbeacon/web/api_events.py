"""``/api/v1/events`` and a message's events: the raw hits with their labels
(a module-level router; the live stream is in api_hooks.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mailbeacon.messages import NotFound
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as store
from mailbeacon.web.api import ERRORS, MAX_ID, Auth, DbId, fail
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["events"])


class EventOut(BaseModel):
    id: int
    message_id: int
    kind: str
    at: str
    method: str
    ip: str
    user_agent: str
    link_position: int | None
    url: str | None
    flags: list[str]
    label: str | None
    reasons: list[str]
    confidence: float | None
    client: str | None
    os: str | None
    device: str | None
    country: str | None
    read_seconds: float | None = Field(
        default=None,
        description="opens: seconds the message stayed open (a streamed pixel, direct readers "
        "only; docs/read-time.md); null when not measured",
    )
    read_bucket: str | None = Field(
        default=None,
        description="opens: glanced, skimmed, read, or unknown (not measured); null for others",
    )
    from_: str | None = Field(
        default=None, alias="from", description="replies: the address that answered"
    )


@router.get(
    "/api/v1/messages/{message_id}/events",
    response_model=list[EventOut],
    responses=ERRORS,
)
def message_events(
    message_id: DbId,
    node: NodeDep,
    _k: Auth,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="return events with id greater than this")
    ] = 0,
) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        if store.get_message(conn, message_id) is None:
            raise fail(NotFound(f"message {message_id} does not exist"))
        return event_store.list_events(conn, message_id=message_id, after=after, limit=limit)


@router.get("/api/v1/events", response_model=list[EventOut], responses=ERRORS)
def all_events(
    node: NodeDep,
    _k: Auth,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        return event_store.list_events(conn, after=after, limit=limit)
