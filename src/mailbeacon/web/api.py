"""The JSON API under /api/v1 (documented at /openapi.json).

Handlers are plain ``def``: FastAPI runs them in its thread pool, so store
reads never block the event loop that serves the tracking paths.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailbeacon import metrics
from mailbeacon.node import Node
from mailbeacon.reports import messages as message_list
from mailbeacon.sent_at import mark_sent, parse_when
from mailbeacon.service import (
    Invalid,
    NotFound,
    add_link,
    create_message,
    honeypot_destination,
    message_view,
)
from mailbeacon.store import events as event_store
from mailbeacon.store import keys, privacy
from mailbeacon.store import messages as store
from mailbeacon.store.messages import Conflict
from mailbeacon.timefmt import iso, parse
from mailbeacon.web.opsaccess import MetricsAccess

# Ids are 64-bit integers in the store; a larger number in a path or body
# would overflow the database driver (a 500), so it is refused as invalid.
MAX_ID = 2**63 - 1
DbId = Annotated[int, Path(ge=0, le=MAX_ID)]
Id = Annotated[int, Field(ge=0, le=MAX_ID)]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


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


class ErrorOut(BaseModel):
    error: str
    message: str


def authorised(request: Request) -> keys.ApiKey:
    node: Node = request.app.state.node
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <key>'; create a key "
            "with `mailbeacon keys create --name NAME`",
        )
    key = keys.check_api_key(node.engine, token.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "this API key is unknown or revoked")
    if request.client is not None:
        node.saw_sender(request.client.host, request.headers.get("x-forwarded-for"))
    return key


Auth = Annotated[keys.ApiKey, Depends(authorised)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key"},
    404: {"model": ErrorOut, "description": "no such object"},
    422: {"model": ErrorOut, "description": "invalid input"},
}


def sent_at_of(value: str | float | None) -> float | None:
    """The request's sent_at, or a 422 (NaN and years past 9999 included, never a 500)."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"sent_at must be ISO 8601 or unix seconds: {exc}") from None


def install(app: FastAPI, node: Node) -> None:

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "invalid", "message": "; ".join(parts)}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse({"error": code, "message": str(exc.detail)}, exc.status_code)

    def fail(exc: Exception) -> ApiError:
        if isinstance(exc, NotFound):
            return ApiError(404, "not_found", str(exc))
        if isinstance(exc, Conflict):
            return ApiError(409, "conflict", str(exc))
        return ApiError(422, "invalid", str(exc))

    @app.post(
        "/api/v1/campaigns",
        response_model=Campaign,
        status_code=201,
        responses=ERRORS,
        tags=["campaigns"],
    )
    def new_campaign(body: CampaignIn, _k: Auth) -> dict[str, Any]:
        try:
            with node.engine.begin() as conn:
                row = store.create_campaign(conn, body.name.strip())
        except Conflict as exc:
            raise fail(exc) from None
        return {**row, "created_at": iso(row["created_at"]), "messages": 0}

    @app.get(
        "/api/v1/campaigns", response_model=list[Campaign], responses=ERRORS, tags=["campaigns"]
    )
    def campaigns(
        _k: Auth,
        archived: Annotated[bool, Query(description="1: include archived campaigns")] = False,
    ) -> list[dict[str, Any]]:
        with node.engine.connect() as conn:
            rows = store.list_campaigns(conn, include_archived=archived)
        return [campaign_out(r) for r in rows]

    def campaign_out(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "created_at": iso(r["created_at"]), "archived_at": iso(r.get("archived_at"))}

    def archive(campaign_id: int, archived: bool) -> dict[str, Any]:
        with node.engine.begin() as conn:
            row = store.set_archived(conn, campaign_id, archived)
        if row is None:
            raise fail(NotFound(f"campaign {campaign_id} does not exist"))
        return campaign_out(row)

    @app.post(
        "/api/v1/campaigns/{campaign_id}/archive",
        response_model=Campaign,
        responses=ERRORS,
        tags=["campaigns"],
    )
    def archive_campaign(campaign_id: DbId, _k: Auth) -> dict[str, Any]:
        """Hide a campaign from lists; its messages keep recording hits."""
        return archive(campaign_id, True)

    @app.post(
        "/api/v1/campaigns/{campaign_id}/unarchive",
        response_model=Campaign,
        responses=ERRORS,
        tags=["campaigns"],
    )
    def unarchive_campaign(campaign_id: DbId, _k: Auth) -> dict[str, Any]:
        return archive(campaign_id, False)

    @app.delete(
        "/api/v1/campaigns/{campaign_id}",
        response_model=CampaignDeleted,
        responses=ERRORS,
        tags=["campaigns"],
    )
    def delete_campaign(campaign_id: DbId, _k: Auth) -> dict[str, Any]:
        """Delete a campaign with its messages, events, rollups and deliveries."""
        done = privacy.campaign_delete(node.engine, campaign_id)
        if done is None:
            raise fail(NotFound(f"campaign {campaign_id} does not exist"))
        return {"id": campaign_id, "deleted": done}

    @app.post(
        "/api/v1/messages",
        response_model=Message,
        status_code=201,
        responses=ERRORS,
        tags=["messages"],
    )
    def new_message(body: MessageIn, _k: Auth) -> dict[str, Any]:
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

    @app.get("/api/v1/messages", response_model=MessagePage, responses=ERRORS, tags=["messages"])
    def find_messages(
        _k: Auth,
        q: Annotated[
            str | None, Query(max_length=320, description="words in the recipient or subject")
        ] = None,
        campaign: Annotated[str | None, Query(max_length=200, description="id or name")] = None,
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

    @app.post(
        "/api/v1/messages/{message_id}/links",
        response_model=Link,
        status_code=201,
        responses=ERRORS,
        tags=["messages"],
    )
    def new_link(message_id: DbId, body: LinkIn, _k: Auth) -> dict[str, Any]:
        try:
            with node.engine.begin() as conn:
                return add_link(conn, node.signer(), node.base_url, message_id, body.url)
        except (Invalid, NotFound) as exc:
            raise fail(exc) from None

    @app.get(
        "/api/v1/messages/{message_id}", response_model=Message, responses=ERRORS, tags=["messages"]
    )
    def get_message(message_id: DbId, _k: Auth) -> dict[str, Any]:
        try:
            with node.engine.connect() as conn:
                return message_view(conn, node.signer(), node.base_url, message_id)
        except NotFound as exc:
            raise fail(exc) from None

    @app.patch(
        "/api/v1/messages/{message_id}", response_model=Message, responses=ERRORS, tags=["messages"]
    )
    def patch_message(message_id: DbId, body: MessagePatch, _k: Auth) -> dict[str, Any]:
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

    @app.get(
        "/api/v1/messages/{message_id}/events",
        response_model=list[EventOut],
        responses=ERRORS,
        tags=["events"],
    )
    def message_events(
        message_id: DbId,
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

    @app.get("/api/v1/events", response_model=list[EventOut], responses=ERRORS, tags=["events"])
    def all_events(
        _k: Auth,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> list[dict[str, Any]]:
        with node.engine.connect() as conn:
            return event_store.list_events(conn, after=after, limit=limit)

    metrics_access = MetricsAccess(
        node.client_ip, node.settings.metrics_token, node.settings.metrics_networks
    )

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["operations"],
        description="Prometheus text. Open to metrics_networks (default: this machine); "
        "from elsewhere it needs 'Authorization: Bearer <metrics_token>'.",
        responses={401: ERRORS[401], 403: {"model": ErrorOut, "description": "not allowed"}},
    )
    def prometheus(request: Request) -> PlainTextResponse:
        refused = metrics_access.refusal(
            request.client.host if request.client else "",
            request.headers.get("x-forwarded-for"),
            request.headers.get("authorization", ""),
        )
        if refused:
            raise ApiError(*refused)
        metrics.QUEUE.set(node.recorder.queued)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", tags=["operations"])
    def health() -> JSONResponse:
        """Whether this process can record (503 while its store is down), its queue,
        an untrusted reverse proxy seen in front, and which `serve --workers`
        process answered (`process`, and `primary` for the one running background jobs)."""
        ok = not node.recorder.down
        proxy = node.proxy_check.found
        return JSONResponse(
            {
                "ok": ok,
                "store": "up" if ok else "down",
                "queued": node.recorder.queued,
                # null, or the untrusted reverse proxy seen in front (web/proxycheck.py)
                "untrusted_proxy": proxy.public() if proxy else None,
                # which serve --workers process answered (web/workers.py)
                "process": os.getpid(),
                "primary": node.primary,
            },
            200 if ok else 503,
        )
