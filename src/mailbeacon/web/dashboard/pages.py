"""Dashboard pages: overview, campaign, message, "Track an email", live feed."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from mailbeacon.messages import (
    HONEYPOT_POSITION,
    Invalid,
    NotFound,
    create_message,
    message_view,
)
from mailbeacon.notify import stream
from mailbeacon.reports import campaign_report, overview
from mailbeacon.reports import messages as message_find
from mailbeacon.reports.domains import blind_domains, domain_of, unknown_reason
from mailbeacon.reports.recipients import recipient_total, recipients
from mailbeacon.sent_at import mark_sent
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as message_store
from mailbeacon.web.dashboard import reasons, times
from mailbeacon.web.dashboard.auth import Post, User
from mailbeacon.web.dashboard.render import not_found, page
from mailbeacon.web.deps import NodeDep

FILTERS = ("all", "opened", "clicked", "not_opened")
PAGE = 100
PAGE_MESSAGES = 50
STATUS_WORDS = (
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("not_opened", "not opened"),
    ("replied", "replied"),
)


def enrich(ev: dict[str, Any]) -> dict[str, Any]:
    """What the live feed shows: the label and its reasons in words."""
    return {
        **ev,
        "label_words": reasons.label_words(ev.get("label")),
        "label_class": reasons.label_class(ev.get("label")),
        "why": reasons.explain(ev.get("label"), ev.get("reasons") or [])[:2],
        "what": reasons.event_words(
            ev.get("kind") or "", ev.get("label"), ev.get("link_position"), HONEYPOT_POSITION
        ),
    }


router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(
    request: Request,
    _user: User,
    node: NodeDep,
    q: Annotated[str | None, Query(max_length=320)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    campaign: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    archived: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    find = {"q": q or None, "status": status or None, "campaign": campaign or None}
    error = None
    with node.engine.connect() as conn:
        camps = overview.campaigns_with_figures(conn, archived)
        try:
            found = message_find.list_messages(
                conn, q=q, status=status, campaign=campaign, limit=PAGE_MESSAGES, cursor=cursor
            )
        except message_find.BadQuery as exc:
            found, error = {"messages": [], "next_cursor": None}, str(exc)
    keep = {k: v for k, v in find.items() if v}
    nxt = found["next_cursor"]
    return page(
        request,
        "home.html",
        {
            "campaigns": camps,
            "archived": archived,
            "found": found["messages"],
            "find": {**find, "cursor": cursor},
            "find_error": error,
            "statuses": STATUS_WORDS,
            "next_url": "/?" + urlencode({**keep, "cursor": nxt}) if nxt else None,
            "first_url": "/?" + urlencode(keep) if keep else "/",
        },
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
def campaign(
    request: Request,
    campaign_id: int,
    _user: User,
    node: NodeDep,
    filter: Annotated[str, Query()] = "all",
    tz: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    which = filter if filter in FILTERS else "all"
    # ?tz= shows this page in another zone; a zone that does not exist is
    # said so, and the page stays in the user's own zone (not UTC).
    zone, zone_error = times.user_zone(request), None
    if tz:
        try:
            zone = times.check(tz)
        except ValueError as exc:
            zone_error = str(exc)
    with node.engine.connect() as conn:
        camp = message_store.get_campaign(conn, campaign_id)
        if camp is None:
            return not_found(request, f"There is no campaign {campaign_id}.")
        report = campaign_report(conn, campaign_id, zone)
        people = recipients(conn, campaign_id, which, limit=PAGE, offset=offset)  # type: ignore[arg-type]
        total = recipient_total(conn, campaign_id, which)  # type: ignore[arg-type]
        counts = {f: recipient_total(conn, campaign_id, f) for f in FILTERS}  # type: ignore[arg-type]
    daily = report.get("timeline_daily") or []
    series, key = (daily, "date") if len(daily) > 3 else (report.get("timeline") or [], "at")
    return page(
        request,
        "campaign.html",
        {
            "campaign": camp,
            "r": report,
            "series": series,
            "series_key": key,
            "people": people,
            "filter": which,
            "filters": FILTERS,
            "counts": counts,
            "total": total,
            "offset": offset,
            "page_size": PAGE,
            "tz": zone,
            "zone": zone,
            "tz_query": zone if tz and not zone_error else "",
            "tz_input": tz or "",
            "error": zone_error,
        },
        status=422 if zone_error else 200,
    )


@router.get("/messages/{message_id}", response_class=HTMLResponse, include_in_schema=False)
def message(request: Request, message_id: int, _user: User, node: NodeDep) -> HTMLResponse:
    with node.engine.connect() as conn:
        try:
            msg = message_view(conn, node.signer(), node.base_url, message_id)
        except NotFound:
            return not_found(request, f"There is no message {message_id}.")
        events = event_store.list_events(conn, message_id=message_id, limit=1000)
        stats = message_store.stats_row(conn, message_id) or None
        unknown = None
        if not (stats and stats.get("opened_at")):  # honest "not opened" (issue 12)
            domain = domain_of(msg["recipient"])
            blind = blind_domains(conn, [domain])
            unknown = unknown_reason(domain, blind[domain]) if domain in blind else None
        camp = message_store.get_campaign(conn, msg["campaign_id"]) if msg["campaign_id"] else None
    return page(
        request,
        "message.html",
        {
            "m": msg,
            "events": events,
            "stats": stats,
            "campaign": camp,
            "opens_unknown": unknown,
        },
    )


@router.post("/messages/{message_id}/sent", include_in_schema=False)
def mark_message_sent(message_id: int, _posted: Post, node: NodeDep) -> Response:
    """The "Mark as sent" button: sent_at is now, and earlier hits are judged again."""
    try:
        mark_sent(node.engine, node.networks(), message_id, time.time(), node.memory)
    except NotFound:
        return Response("no such message", status_code=404)
    return RedirectResponse(f"/messages/{message_id}", status_code=303)


@router.get("/track", response_class=HTMLResponse, include_in_schema=False)
def track_form(request: Request, _user: User) -> HTMLResponse:
    return page(request, "track.html", {"form": {}})


@router.post("/track", response_class=HTMLResponse, include_in_schema=False)
def track(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    f = posted.form
    links = [u.strip() for u in f.get("links", "").splitlines() if u.strip()]
    try:
        with node.engine.begin() as conn:
            # No sent_at: the message is still being written; the compose
            # window's first fetch is self:compose_time until "Mark as sent".
            msg = create_message(
                conn,
                node.signer(),
                node.base_url,
                recipient=f.get("recipient", ""),
                subject=f.get("subject") or None,
                links=links,
            )
    except (Invalid, NotFound) as exc:
        return page(request, "track.html", {"form": f, "error": str(exc)}, status=422)
    # The page's live box streams from here: a pixel fetched before its
    # stream connects (a slow phone, a busy server) still shows up.
    after = stream.latest_id(node.engine)
    ctx = {"form": {}, "created": msg, "after": after}
    return page(request, "track.html", ctx, status=201)


@router.get("/live", response_class=HTMLResponse, include_in_schema=False)
def live(
    request: Request,
    _user: User,
    node: NodeDep,
    label: Annotated[str, Query(max_length=20)] = "",
    campaign: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    with node.engine.connect() as conn:
        camps = message_store.list_campaigns(conn)
    return page(
        request,
        "live.html",
        {
            "feed_filters": True,
            "feed_label": label if label in reasons.FEED_CLASSES else "",
            "feed_campaign": campaign if campaign.isdigit() else "",
            "feed_classes": reasons.FEED_CLASSES,
            "campaigns": camps,
        },
    )


@router.get("/live/recent", include_in_schema=False)
def live_recent(
    _user: User,
    node: NodeDep,
    label: Annotated[str, Query(max_length=20)] = "",
    campaign: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONResponse:
    """What the live feed opens on: the last events, newest first, in the
    stream's shape (so the page needs no second way to draw a hit), and the
    id the stream continues after: every event up to it was considered
    here, filtered or not, so nothing is missed or shown twice."""
    labels = reasons.labels_of(label) if label in reasons.FEED_CLASSES else None
    after = stream.latest_id(node.engine)
    rows = stream.recent(node.engine, limit, labels=labels, campaign_id=campaign, up_to=after)
    return JSONResponse(
        {"after": after, "events": [enrich(ev) for ev in rows]},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/live/stream", include_in_schema=False)
def live_stream(
    request: Request, _user: User, node: NodeDep, after: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    start = stream.start_after(node.engine, request.headers.get("last-event-id"), after)
    return StreamingResponse(
        stream.sse(node.engine, start, is_disconnected=request.is_disconnected, enrich=enrich),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )
