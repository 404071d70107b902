"""Campaign reports, recipient lists and exports under /api/v1 (a module-level
router; the privacy actions on one recipient are in api_privacy.py).

Reports read rollups only (mailbeacon.reports); exports stream raw events
through a server-side cursor.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mailbeacon.node import Node
from mailbeacon.reports import campaign_report
from mailbeacon.reports import export as exports
from mailbeacon.reports.recipients import recipient_total, recipients
from mailbeacon.store import messages as store
from mailbeacon.web.api import ERRORS, ApiError, Auth, DbId
from mailbeacon.web.api_messages import ReadTime
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["reports"])


class Opens(BaseModel):
    human_unique: int
    human_total: int
    human_direct_total: int
    human_via_proxy_total: int
    human_pixel_unique: int
    machine_unique: int
    machine_total: int
    scanner_total: int
    bot_total: int
    self_total: int
    unlabelled_total: int
    open_rate: float
    opened_or_auto_unique: int
    opened_or_auto_rate: float
    read_unique: int = Field(
        description="messages with an open measured as read (shown > read_read_above s)"
    )
    read_rate: float = Field(description="read_unique / messages: a stricter engagement rate")
    read_time: ReadTime


class Clicks(BaseModel):
    human_unique: int
    human_total: int
    scanner_total: int
    bot_total: int
    self_total: int
    unlabelled_total: int
    click_rate: float
    click_to_open_rate: float


class LinkRow(BaseModel):
    position: int
    url: str | None
    human_unique: int
    human_total: int
    other_total: int


class Counts(BaseModel):
    human_opens: int
    machine_opens: int
    other_opens: int
    human_clicks: int
    other_clicks: int


class HourRow(Counts):
    at: str


class DayRow(Counts):
    date: str


class Heatmap(BaseModel):
    tz: str
    weekdays: list[str]
    human_opens: list[list[int]]


class Share(BaseModel):
    name: str
    opens: int
    share: float


class VariantRow(BaseModel):
    variant: str
    subject: str | None = Field(default=None, description="the variant's subject line")
    messages: int
    opened: int
    clicked: int
    open_rate: float
    click_rate: float
    p_value: float
    vs: str | None
    winner: bool
    small_sample: bool
    click_p_value: float
    click_vs: str | None
    click_winner: bool
    click_small_sample: bool
    verdict: str = Field(
        description='the comparison in words, e.g. "more opens than B (p = 0.012)" or '
        '"too few messages to tell (p = 0.64)"'
    )


class SendTimeAdvice(BaseModel):
    text: str = Field(
        description='"Most first opens: Tue–Thu 9–12 (Europe/Paris), 14 of 23 people (61%)." '
        "or, below min_sample first opens, why there is no advice yet"
    )
    weekdays: list[str] | None = Field(
        description="the window's 1-3 consecutive weekdays (Mon..Sun, no wrap); null: no advice"
    )
    hours: list[int] | None = Field(
        description="its 1-3 consecutive local hours (0-23, no wrap past midnight); "
        "[9, 10, 11] is 9:00 to 12:00"
    )
    tz: str = Field(description="the zone of weekdays and hours: the report's tz")
    sample: int = Field(description="messages with a first human open (one per person)")
    opens: int | None = Field(description="first opens inside the window")
    share: float | None = Field(description="opens / sample")
    min_sample: int = Field(description="first opens needed before any advice")


class TtfoRow(BaseModel):
    bucket: str
    messages: int


class RecipientRow(BaseModel):
    message_id: int
    recipient: str
    open_status: Literal["opened", "not_opened", "unknown"] = Field(
        description='"unknown" when mail to the domain never shows a person\'s open '
        "(see open_status_reason), instead of claiming it was not opened"
    )
    open_status_reason: str | None = None
    variant: str | None
    opened: bool
    opened_at: str | None
    human_opens: int
    human_clicks: int
    last_human_at: str | None


class WarmLead(RecipientRow):
    why: Literal["clicked", "read", "opened_repeatedly"] = Field(
        description="clicked; read: an open measured as read (docs/read-time.md); "
        "opened_repeatedly: two or more human opens"
    )


class Replies(BaseModel):
    human_unique: int = Field(description="messages with a human reply")
    human_total: int
    human_reply_rate: float = Field(description="human_unique / messages")
    auto_reply_total: int = Field(description="out-of-office and other auto-replies")
    bounce_total: int
    bounced_unique: int
    bounce_rate: float
    opened_by_reply_unique: int = Field(
        description="messages counted as opened because a human replied before any human open"
    )


class Report(BaseModel):
    campaign_id: int
    messages: int
    opens: Opens
    clicks: Clicks
    scanned_unique: int
    replies: Replies
    links: list[LinkRow]
    timeline: list[HourRow]
    timeline_daily: list[DayRow]
    heatmap: Heatmap
    clients: list[Share]
    os: list[Share]
    devices: list[Share]
    countries: list[Share]
    variants: list[VariantRow]
    variants_verdict: str | None = Field(
        description="the A/B result in one sentence: the winner with its subject, both "
        "rates and p; or why there is none yet, with the messages per variant that "
        "would show the gap; null without variants"
    )
    send_time_advice: SendTimeAdvice
    first_open_at: str | None
    time_to_first_open: list[TtfoRow]
    warm_leads: list[WarmLead]
    tz: str


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def need_campaign(node: Node, campaign_id: int) -> None:
    with node.engine.connect() as conn:
        if store.get_campaign(conn, campaign_id) is None:
            raise ApiError(404, "not_found", f"campaign {campaign_id} does not exist")


@router.get(
    "/api/v1/campaigns/{campaign_id}/report",
    response_model=Report,
    responses=ERRORS,
)
def report(
    campaign_id: DbId,
    node: NodeDep,
    _k: Auth,
    tz: Annotated[
        str, Query(max_length=64, description="IANA zone for daily rows and the heatmap")
    ] = "UTC",
) -> dict[str, Any]:
    with node.engine.connect() as conn:
        if store.get_campaign(conn, campaign_id) is None:
            raise ApiError(404, "not_found", f"campaign {campaign_id} does not exist")
        try:
            return campaign_report(conn, campaign_id, tz)
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None


@router.get(
    "/api/v1/campaigns/{campaign_id}/recipients",
    response_model=list[RecipientRow],
    responses=ERRORS,
    description="One page of recipients; the header X-Total-Count has the filter's total.",
)
def campaign_recipients(
    campaign_id: DbId,
    node: NodeDep,
    _k: Auth,
    response: Response,
    filter: Literal["all", "opened", "clicked", "not_opened"] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    need_campaign(node, campaign_id)
    with node.engine.connect() as conn:
        response.headers["X-Total-Count"] = str(recipient_total(conn, campaign_id, filter))
        return recipients(conn, campaign_id, filter, limit, offset)


@router.get(
    "/api/v1/campaigns/{campaign_id}/export",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {
            "description": "the export, streamed",
            "content": {"text/csv": {}, "application/json": {}},
        },
    },
)
def campaign_export(
    campaign_id: DbId,
    node: NodeDep,
    _k: Auth,
    what: Literal["events", "recipients"] = "events",
    format: Literal["csv", "json"] = "csv",
) -> StreamingResponse:
    need_campaign(node, campaign_id)
    name = f"campaign-{campaign_id}-{what}.{format}"
    return StreamingResponse(
        exports.export(node.engine, campaign_id, what, format),
        media_type=EXPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
