"""``POST /api/v1/instrument`` and ``POST /api/v1/lint``: tracking put into real email."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, model_validator

from mailbeacon.instrument import lint
from mailbeacon.instrumenting import instrument_message
from mailbeacon.service import HONEYPOT_PATH, Invalid, NotFound
from mailbeacon.web.api import ERRORS, ApiError, Auth, Message, sent_at_of
from mailbeacon.web.node import Node

MAX_MAIL = 10 * 1024 * 1024  # 10 MB: Gmail's and Outlook's message size limits are 20-25 MB


class InstrumentIn(BaseModel):
    html: str | None = Field(default=None, max_length=MAX_MAIL)
    eml: str | None = Field(
        default=None, max_length=MAX_MAIL, description="a whole RFC 5322 message"
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
        if (self.html is None) == (self.eml is None):
            raise ValueError("send exactly one of html or eml")
        return self


class InstrumentOut(BaseModel):
    message: Message
    html: str | None = None
    eml: str | None = None


class LintIn(BaseModel):
    html: str | None = Field(default=None, max_length=MAX_MAIL)
    eml: str | None = Field(default=None, max_length=MAX_MAIL)
    from_domain: str | None = None


class FindingOut(BaseModel):
    line: int
    code: str
    message: str


def install(app: FastAPI, node: Node) -> None:
    @app.post(
        "/api/v1/instrument",
        response_model=InstrumentOut,
        status_code=201,
        responses=ERRORS,
        tags=["instrument"],
        response_model_exclude_none=True,
    )
    def instrument(body: InstrumentIn, _k: Auth) -> dict[str, Any]:
        sent_at = sent_at_of(body.sent_at)
        try:
            with node.engine.begin() as conn:
                res = instrument_message(
                    conn,
                    node.signer(),
                    node.base_url,
                    html=body.html,
                    eml=body.eml,
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
        out: dict[str, Any] = {"message": res.message}
        if res.html is not None:
            out["html"] = res.html
        else:
            assert res.eml is not None
            # An .eml is 7-bit or 8-bit text in its original charset; surrogateescape
            # would not survive JSON, so bytes outside UTF-8 become U+FFFD here.
            out["eml"] = res.eml.decode("utf-8", "replace")
        return out

    @app.post(
        "/api/v1/lint", response_model=list[FindingOut], responses=ERRORS, tags=["instrument"]
    )
    def lint_mail(body: LintIn, _k: Auth) -> list[dict[str, Any]]:
        text = body.html if body.html is not None else body.eml
        if text is None:
            raise ApiError(422, "invalid", "send html or eml")
        findings = lint(text, tracking_base_url=node.base_url, from_domain=body.from_domain)
        return [{"line": f.line, "code": f.code, "message": f.message} for f in findings]

    @app.get(HONEYPOT_PATH, include_in_schema=False)
    def honeypot() -> HTMLResponse:
        # Where the invisible honeypot link leads: only machines ever get here.
        return HTMLResponse(
            "<!doctype html><title>mailbeacon</title><p>Nothing here.</p>",
            headers={"X-Robots-Tag": "noindex"},
        )
