"""The sender's dashboard at ``/``: server-rendered pages, inline SVG charts,
a live feed over server-sent events, and a little vanilla JS. Nothing is
loaded from a CDN: every page works offline.

Each module holds a module-level ``router`` whose routes reach the node
through ``node: NodeDep`` (web/deps.py); ``install`` includes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing a dashboard module must not load the web stack by itself
    from fastapi import FastAPI

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from fastapi.staticfiles import StaticFiles

    from mailbeacon.web.dashboard import (
        auth,
        campaign_actions,
        mailbox_pages,
        pages,
        pwa,
        sender_pages,
        settings_pages,
    )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Exception handlers belong to the app (a router has none): signed-out
    # requests go to the login page, a stale form's CSRF token gets a 403 page.
    app.exception_handler(auth.LoginRequired)(auth.to_login)
    app.exception_handler(auth.CsrfFailed)(auth.form_expired)
    # Route order decides matching (/settings/senders/{email} comes after
    # every fixed /settings path): keep this order.
    app.include_router(pwa.router)
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(campaign_actions.router)
    app.include_router(settings_pages.router)
    app.include_router(mailbox_pages.router)
    app.include_router(sender_pages.router)
