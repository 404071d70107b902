"""``POST /api/v1/instrument`` and ``POST /api/v1/lint``: tracking put into real email
(a module-level router).

A message is bytes in whatever charsets its parts declare, and JSON strings
cannot carry bytes that are not UTF-8 (``Müller`` in latin-1 came back as
UTF-8). So a message can come as ``eml_base64`` in the JSON body, or as the
raw request body with ``Content-Type: message/rfc822`` and the other fields
as query parameters; the instrumented message always comes back as
``eml_base64`` too, byte for byte.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from mailbeacon.instrument import lint
from mailbeacon.messages import HONEYPOT_PATH, Invalid, NotFound, instrument_message
from mailbeacon.node import Node
from mailbeacon.web.api import ERRORS, ApiError, Auth, sent_at_of
from mailbeacon.web.api_messages import Message
from mailbeacon.web.deps import NodeDep

MAX_MAIL = 10 * 1024 * 1024  # 10 MB: Gmail's and Outlook's message size limits are 20-25 MB
Clicks = Literal["off", "safe", "all"]
Pixel = Literal["bottom", "top"]
router = APIRouter()


class InstrumentIn(BaseModel):
    html: str | None = Field(default=None, max_length=MAX_MAIL)
    eml: str | None = Field(
        default=None, max_length=MAX_MAIL, description="a whole RFC 5322 message"
    )
    eml_base64: str | None = Field(
        default=None,
        max_length=MAX_MAIL * 4 // 3 + 4,
        description="a whole message as base64, for messages that are not all UTF-8",
    )
    recipient: str = Field(min_length=3, max_length=320)
    campaign_id: int | None = None
    subject: str | None = Field(default=None, max_length=998)
    variant: str | None = Field(default=None, max_length=100)
    sent_at: str | float | None = None
    clicks: Literal["off", "safe", "all"] = Field(
        default="safe",
        description="safe: leave links whose text shows a URL or domain, and unsubscribe links",
    )
    pixel: Literal["bottom", "top"] = "bottom"
    honeypot: bool = False
    text_links: bool = Field(default=False, description=".eml: also track URLs in text/plain parts")

    @model_validator(mode="after")
    def _one_body(self) -> InstrumentIn:
        if sum(b is not None for b in (self.html, self.eml, self.eml_base64)) != 1:
            raise ValueError("send exactly one of html, eml or eml_base64")
        return self


class LeftAlone(BaseModel):
    url: str
    reason: str = Field(description="placeholder, unsubscribe, visible_url, mailto, ...")
    detail: str = Field(default="", description="what was found, e.g. the placeholder")


class InstrumentReport(BaseModel):
    pixel_added: bool
    pixel: str = Field(description="where the pixel went, or why there is none")
    links_tracked: int
    left_alone: list[LeftAlone]
    notes: list[str] = Field(description="what was sloppy in the message and how it was read")


class InstrumentOut(BaseModel):
    message: Message
    html: str | None = None
    eml: str | None = Field(default=None, description="the message as text (lossy if not UTF-8)")
    eml_base64: str | None = Field(default=None, description="the message, byte for byte")
    report: InstrumentReport


class LintIn(BaseModel):
    html: str | None = Field(default=None, max_length=MAX_MAIL)
    eml: str | None = Field(default=None, max_length=MAX_MAIL)
    from_domain: str | None = None


class FindingOut(BaseModel):
    line: int
    code: str
    message: str


class _MessageBody(APIRoute):
    """Matches only a ``Content-Type: message/rfc822`` request, so the JSON
    route of the same path answers everything else."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        ctype = dict(scope.get("headers", ())).get(b"content-type", b"")
        if ctype.split(b";")[0].strip().lower() != b"message/rfc822":
            return Match.NONE, {}
        return match, child


_RAW_DOC = {
    "requestBody": {
        "content": {
            "message/rfc822": {
                "schema": {"type": "string", "format": "binary"},
                "description": "the message itself; the other fields go in the query string",
            }
        }
    }
}


def run(node: Node, body: InstrumentIn) -> dict[str, Any]:
    """The instrumenting behind both /api/v1/instrument routes (JSON and raw)."""
    sent_at = sent_at_of(body.sent_at)
    eml: str | bytes | None = body.eml
    if body.eml_base64 is not None:
        try:
            eml = binascii.a2b_base64(body.eml_base64.encode("ascii"), strict_mode=False)
        except (binascii.Error, UnicodeEncodeError):
            raise ApiError(422, "invalid", "eml_base64 is not base64") from None
    try:
        with node.engine.begin() as conn:
            res = instrument_message(
                conn,
                node.signer(),
                node.base_url,
                html=body.html,
                eml=eml,
                recipient=body.recipient,
                subject=body.subject,
                campaign_id=body.campaign_id,
                variant=body.variant,
                sent_at=sent_at,
                clicks=body.clicks,
                pixel=body.pixel,
                honeypot=body.honeypot,
                text_links=body.text_links,
            )
    except (Invalid, NotFound) as exc:
        status, code = (404, "not_found") if isinstance(exc, NotFound) else (422, "invalid")
        raise ApiError(status, code, str(exc)) from None
    out: dict[str, Any] = {"message": res.message, "report": res.report}
    if res.html is not None:
        out["html"] = res.html
    else:
        assert res.eml is not None
        # JSON text cannot hold bytes that are not UTF-8: "eml" shows them
        # as U+FFFD, "eml_base64" is exact.
        out["eml"] = res.eml.decode("utf-8", "replace")
        out["eml_base64"] = binascii.b2a_base64(res.eml, newline=False).decode("ascii")
    return out


async def instrument_raw(
    request: Request,
    node: NodeDep,
    _k: Auth,
    recipient: Annotated[str, Query(min_length=3, max_length=320)],
    campaign_id: int | None = None,
    subject: Annotated[str | None, Query(max_length=998)] = None,
    variant: Annotated[str | None, Query(max_length=100)] = None,
    sent_at: str | None = None,
    clicks: Clicks = "safe",
    pixel: Pixel = "bottom",
    honeypot: bool = False,
    text_links: bool = False,
) -> dict[str, Any]:
    data = await request.body()
    if len(data) > MAX_MAIL:
        raise ApiError(422, "invalid", f"the message is over {MAX_MAIL // 2**20} MB")
    try:
        body = InstrumentIn(
            eml_base64=binascii.b2a_base64(data, newline=False).decode("ascii"),
            recipient=recipient,
            campaign_id=campaign_id,
            subject=subject,
            variant=variant,
            sent_at=sent_at,
            clicks=clicks,
            pixel=pixel,
            honeypot=honeypot,
            text_links=text_links,
        )
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return await run_in_threadpool(run, node, body)


# Registered first: it takes message/rfc822 requests, the JSON route the rest.
router.add_api_route(
    "/api/v1/instrument",
    instrument_raw,
    methods=["POST"],
    response_model=InstrumentOut,
    status_code=201,
    responses=ERRORS,
    response_model_exclude_none=True,
    include_in_schema=False,
    route_class_override=_MessageBody,
)


@router.post(
    "/api/v1/instrument",
    response_model=InstrumentOut,
    status_code=201,
    responses=ERRORS,
    tags=["instrument"],
    response_model_exclude_none=True,
    openapi_extra=_RAW_DOC,
)
def instrument(body: InstrumentIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    """Put a pixel and tracked links into an HTML body or a whole message.

    A message may also be sent as the raw body (`Content-Type: message/rfc822`)
    with the other fields as query parameters; it always comes back as
    `eml_base64`, byte for byte. `report` says where the pixel went (or why
    there is none) and which links were left alone, and why.
    """
    return run(node, body)


@router.post("/api/v1/lint", response_model=list[FindingOut], responses=ERRORS, tags=["instrument"])
def lint_mail(body: LintIn, node: NodeDep, _k: Auth) -> list[dict[str, Any]]:
    text = body.html if body.html is not None else body.eml
    if text is None:
        raise ApiError(422, "invalid", "send html or eml")
    findings = lint(
        text,
        tracking_base_url=node.base_url,
        from_domain=body.from_domain,
        kind="html" if body.html is not None else "eml",
    )
    return [{"line": f.line, "code": f.code, "message": f.message} for f in findings]


@router.get(HONEYPOT_PATH, include_in_schema=False)
def honeypot() -> HTMLResponse:
    # Where the invisible honeypot link leads: only machines ever get here.
    return HTMLResponse(
        "<!doctype html><title>mailbeacon</title><p>Nothing here.</p>",
        headers={"X-Robots-Tag": "noindex"},
    )
