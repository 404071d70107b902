"""``/api/v1/messages``: create, find, read and mark sent messages and add
their tracked links (a module-level router; their events are in
api_events.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mailbeacon.messages import (
    Invalid,
    NotFound,
    add_link,
    create_message,
    honeypot_destination,
    message_view,
)
from mailbeacon.reports import messages as message_list
from mailbeacon.sent_at import mark_sent, parse_when
from mailbeacon.store.messages import CAMPAIGN_NAME_MAX
from mailbeacon.timefmt import parse
from mailbeacon.web.api import ERRORS, ApiError, Auth, DbId, Id, fail, sent_at_of
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["messages"])


class MessageIn(BaseModel):
    recipient: str = Field(min_length=3, max_length=320, examples=["ana@example.com"])
    subject: str | None = Field(default=None, max_length=998)
    campaign_id: Id | None = None
    variant: str | None = Field(default=None, max_length=100)
    sent_at: str | float | None = Field(
        default=None, description="ISO 8601 time or unix seconds; empty while still composing"
    )
    links: list[str] = Field(default_factory=list, max_length=500)
    honeypot: bool = Field(default=False, description="add an invisible link only scanners follow")
    message_id_header: str | None = Field(
        default=None,
        max_length=998,
        description="the Message-ID header the mail is sent with: replies are matched to it",
        examples=["<abc123@mail.example.com>"],
    )


class MessagePatch(BaseModel):
    sent_at: str | float = Field(
        description='"now", an ISO 8601 time or unix seconds: when the message was sent; '
        "earlier hits are relabelled with it",
        examples=["now"],
    )


class LinkIn(BaseModel):
    url: str = Field(min_length=1, max_length=4096)


class Link(BaseModel):
    url: str
    position: int
    tracked_url: str


class ReadTime(BaseModel):
    """Read time of human opens (docs/read-time.md): measured only for a
    reader's own client; proxied and prefetched opens are ``unknown``."""

    glanced: int
    skimmed: int
    read: int
    measured: int
    unknown: int
    measured_share: float = Field(description="measured / human opens")


class MessageBase(BaseModel):
    id: int
    recipient: str
    subject: str | None
    campaign_id: int | None
    variant: str | None
    sent_at: str | None
    created_at: str | None


class Message(MessageBase):
    open_url: str
    pixel_html: str
    honeypot_position: int | None = None
    message_id_header: str | None = None
    links: list[Link]
    summary: dict[str, Any] | None = None
    replied_at: str | None = Field(default=None, description="the first human reply")
    replies: int = Field(default=0, description="human replies (auto-replies not counted)")
    bounced: bool = Field(default=False, description="a delivery failure report came back")
    auto_replies: int = Field(default=0, description="out-of-office and other auto-replies")
    opened_by: str | None = Field(
        default=None, description="what first showed a read: open, click or reply"
    )
    read_time: ReadTime | None = Field(
        default=None, description="read-time buckets of its opens (docs/read-time.md)"
    )


class MessageRow(BaseModel):
    id: int
    recipient: str
    subject: str | None
    campaign_id: int | None
    campaign: str | None = Field(description="the campaign's name")
    variant: str | None
    created_at: str | None
    sent_at: str | None
    last_activity_at: str | None = Field(
        description="the last human open, click or reply; else when the message was created"
    )
    last_human_at: str | None = Field(description="the last human open, click or reply")
    opened: bool = Field(description="a person opened, clicked or replied")
    human_opens: int
    human_clicks: int
    replied: bool
    summary: str = Field(
        description="what happened, in words",
        examples=["Opened 3× · iPhone", "Not opened — 2 scanner checks"],
    )


class MessagePage(BaseModel):
    messages: list[MessageRow]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null: no more")


@router.post(
    "/api/v1/messages",
    response_model=Message,
    status_code=201,
    responses=ERRORS,
)
def new_message(body: MessageIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    sent_at = sent_at_of(body.sent_at)
    signer = node.signer()
    try:
        with node.engine.begin() as conn:
            honeypot = honeypot_destination(node.base_url) if body.honeypot else None
            return create_message(
                conn,
                signer,
                node.base_url,
                recipient=body.recipient,
                subject=body.subject,
                campaign_id=body.campaign_id,
                variant=body.variant,
                sent_at=sent_at,
                links=body.links,
                honeypot_url=honeypot,
                message_id_header=body.message_id_header,
            )
    except (Invalid, NotFound) as exc:
        raise fail(exc) from None


@router.get("/api/v1/messages", response_model=MessagePage, responses=ERRORS)
def find_messages(
    node: NodeDep,
    _k: Auth,
    q: Annotated[
        str | None, Query(max_length=320, description="words in the recipient or subject")
    ] = None,
    campaign: Annotated[
        str | None, Query(max_length=CAMPAIGN_NAME_MAX, description="id or name")
    ] = None,
    status: Annotated[
        str | None,
        Query(description="opened, clicked, not_opened or replied (people only)"),
    ] = None,
    sort: Annotated[str, Query(description="last_activity or created")] = "last_activity",
    limit: Annotated[int, Query(ge=1, le=message_list.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Every message, newest activity first; keyset paged (``next_cursor``)."""
    try:
        with node.engine.connect() as conn:
            return message_list.list_messages(
                conn,
                q=q,
                campaign=campaign,
                status=status,
                sort=sort,
                limit=limit,
                cursor=cursor,
            )
    except message_list.BadQuery as exc:
        raise ApiError(422, "invalid", str(exc)) from None


@router.post(
    "/api/v1/messages/{message_id}/links",
    response_model=Link,
    status_code=201,
    responses=ERRORS,
)
def new_link(message_id: DbId, body: LinkIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        with node.engine.begin() as conn:
            return add_link(conn, node.signer(), node.base_url, message_id, body.url)
    except (Invalid, NotFound) as exc:
        raise fail(exc) from None


@router.get("/api/v1/messages/{message_id}", response_model=Message, responses=ERRORS)
def get_message(message_id: DbId, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        with node.engine.connect() as conn:
            return message_view(conn, node.signer(), node.base_url, message_id)
    except NotFound as exc:
        raise fail(exc) from None


@router.patch("/api/v1/messages/{message_id}", response_model=Message, responses=ERRORS)
def patch_message(message_id: DbId, body: MessagePatch, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        when = parse_when(body.sent_at, parse)
    except ValueError as exc:
        raise fail(Invalid(str(exc))) from None
    try:
        mark_sent(node.engine, node.networks(), message_id, when, node.memory)
        with node.engine.connect() as conn:
            return message_view(conn, node.signer(), node.base_url, message_id)
    except NotFound as exc:
        raise fail(exc) from None
