"""The sender's dashboard at ``/``: server-rendered pages, inline SVG charts,
a live feed over server-sent events, and a little vanilla JS. Nothing is
loaded from a CDN: every page works offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports accounts from here without loading the web stack
    from fastapi import FastAPI

    from mailbeacon.node import Node

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, node: Node) -> None:
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from mailbeacon.web.dashboard import (
        auth,
        campaign_actions,
        mailbox_pages,
        pages,
        sender_pages,
        settings_pages,
    )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # The service worker is served from the root because a worker controls only
    # the paths under its own URL; both files are public (the login page is
    # part of the installed app) and are revalidated on each start.
    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        return FileResponse(
            STATIC / "sw.js",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def manifest() -> FileResponse:
        return FileResponse(
            STATIC / "manifest.webmanifest",
            media_type="application/manifest+json",
            headers={"Cache-Control": "no-cache"},
        )

    # Exception handlers belong to the app (a router has none): signed-out
    # requests go to the login page, a stale form's CSRF token gets a 403 page.
    app.exception_handler(auth.LoginRequired)(auth.to_login)
    app.exception_handler(auth.CsrfFailed)(auth.form_expired)
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(campaign_actions.router)
    app.include_router(settings_pages.router)
    app.include_router(mailbox_pages.router)
    app.include_router(sender_pages.router)
