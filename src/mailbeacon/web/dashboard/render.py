"""Jinja2 templates for the dashboard (autoescaped; templates/ beside this file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from mailbeacon.web.dashboard import alerts, charts, reasons, times
from mailbeacon.web.deps import get_node

HERE = Path(__file__).parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@pass_context
def when(ctx: Context, value: Any) -> Markup:
    """A ``<time>``: relative words, the absolute time in the page's zone on hover."""
    return times.time_html(value, ctx.get("zone") or "UTC")


def plural(n: int | None, one: str, many: str | None = None) -> str:
    """'1 message', '2 messages', '0 messages' ('fetch' -> 'fetches')."""
    n = int(n or 0)
    if n == 1:
        return f"1 {one}"
    return f"{n} {many or (one + 'es' if one.endswith(('s', 'sh', 'ch', 'x')) else one + 's')}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


env.globals.update(
    label_words=reasons.label_words,
    label_class=reasons.label_class,
    explain=reasons.explain,
    when=when,
    pct=pct,
    plural=plural,
    client_words=reasons.client_words,
    event_words=reasons.event_words,
    svg=lambda s: Markup(s),  # charts.* build escaped SVG themselves
    charts=charts,
)


def page(
    request: Request, name: str, ctx: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    sess = getattr(request.state, "mb_session", None)
    node = get_node(request)
    proxy = node.proxy_check.found
    full = {
        "request": request,
        "user": sess,
        "csrf": sess.csrf if sess is not None else "",
        "path": request.url.path,
        "proxy_warning": proxy.message if proxy else None,
        **(ctx or {}),
    }
    if sess is not None:
        full["notify"] = json.dumps(alerts.load(node.engine, sess.user_id))
    saved = times.saved(request)
    full["zone_saved"] = saved is not None
    if not full.get("zone"):
        full["zone"] = saved or times.browser_zone(request)
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


def not_found(request: Request, what: str) -> HTMLResponse:
    """The dashboard's 404: the error page saying what was not found."""
    return page(request, "error.html", {"title": "Not found", "message": what}, status=404)
