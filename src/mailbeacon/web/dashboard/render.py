"""Jinja2 templates for the dashboard (autoescaped; templates/ beside this file)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from mailbeacon.web.dashboard import charts, reasons

HERE = Path(__file__).parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: Any) -> str:
    """ISO strings or unix seconds -> '2024-05-01 14:03 UTC'."""
    if value in (None, ""):
        return "—"
    if isinstance(value, int | float):
        dt = datetime.fromtimestamp(value, UTC)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


env.globals.update(
    label_words=reasons.label_words,
    label_class=reasons.label_class,
    explain=reasons.explain,
    when=when,
    pct=pct,
    svg=lambda s: Markup(s),  # charts.* build escaped SVG themselves
    charts=charts,
)


def page(
    request: Request, name: str, ctx: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    sess = getattr(request.state, "mb_session", None)
    proxy = request.app.state.node.proxy_check.found
    full = {
        "request": request,
        "user": sess,
        "csrf": sess.csrf if sess is not None else "",
        "path": request.url.path,
        "proxy_warning": proxy.message if proxy else None,
        **(ctx or {}),
    }
    resp = HTMLResponse(env.get_template(name).render(full), status_code=status)
    # The dashboard shows recipients' activity: never cache it, never frame it.
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return resp
