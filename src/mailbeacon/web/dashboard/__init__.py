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
    from fastapi.staticfiles import StaticFiles

    from mailbeacon.web.dashboard import auth, campaign_actions, pages, settings_pages

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    auth.install(app, node)
    pages.install(app, node)
    campaign_actions.install(app, node)
    settings_pages.install(app, node)
