"""Builds the ASGI app: tracking paths first, then the API (FastAPI)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from mailbeacon.config import Settings
from mailbeacon.hits.readpixel import ReadPixel
from mailbeacon.hits.track import Tracker
from mailbeacon.node import Node
from mailbeacon.web.api import ERROR_HANDLERS
from mailbeacon.web.api_campaigns import router as campaigns_router
from mailbeacon.web.api_events import router as events_router
from mailbeacon.web.api_hooks import router as hooks_router
from mailbeacon.web.api_instrument import router as instrument_router
from mailbeacon.web.api_mailboxes import router as mailboxes_router
from mailbeacon.web.api_messages import router as messages_router
from mailbeacon.web.api_operations import router as operations_router
from mailbeacon.web.api_privacy import router as privacy_router
from mailbeacon.web.api_reminders import router as reminders_router
from mailbeacon.web.api_reports import router as reports_router
from mailbeacon.web.dashboard import install as install_dashboard
from mailbeacon.web.limits import BodyLimit, BodyLimits
from mailbeacon.web.proxycheck import ProxyWatch


def build(settings: Settings, node: Node | None = None) -> Tracker:
    node = node or Node(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        # Everything allocated so far (modules, keys, network lists: ~100k
        # objects) lives as long as the process. Moving it out of the
        # collector's view took full collections from 63-80 ms pauses, the
        # cause of the p99 misses in bench/pixel, to nothing noticeable.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await node.stop()

    api = FastAPI(
        title="mailbeacon",
        version=_version(),
        description="Email open and click tracking with honest labels.",
        lifespan=lifespan,
        exception_handlers=ERROR_HANDLERS,
        # The bundled Swagger/ReDoc pages load scripts from a CDN; pages here
        # must work offline, so only the OpenAPI document is served.
        docs_url=None,
        redoc_url=None,
    )
    api.state.node = node
    # Bodies are capped before the API or the dashboard reads them (the
    # tracking paths in front never read one).
    api.add_middleware(
        BodyLimit,
        limits=BodyLimits(
            max_body_bytes=settings.max_body_bytes,
            max_instrument_body_bytes=settings.max_instrument_body_bytes,
            body_timeout=settings.body_timeout,
        ),
    )
    api.include_router(campaigns_router)
    api.include_router(messages_router)
    api.include_router(events_router)
    api.include_router(operations_router)
    api.include_router(instrument_router)
    api.include_router(reports_router)
    api.include_router(privacy_router)
    api.include_router(hooks_router)
    api.include_router(mailboxes_router)
    api.include_router(reminders_router)
    install_dashboard(api)
    return Tracker(
        fallback=api,
        signer=node.signer,
        recorder=node.recorder,
        client_ip=node.client_ip,
        ip_storage=node.ip_storage,
        labeller=node.labeller,
        reading=ReadPixel(
            recorder=node.recorder,
            enabled=settings.read_time,
            cap=settings.read_time_cap,
            budget=settings.read_time_streams,
        ),
    )


def _version() -> str:
    from mailbeacon import __version__

    return __version__


def serving(settings: Settings, node: Node | None = None) -> ASGIApp:
    """What a server runs: the app, watched for an untrusted reverse proxy in front."""
    node = node or Node(settings)
    return ProxyWatch(build(settings, node), node.proxy_check)


def create_app() -> ASGIApp:
    """App factory for ASGI servers (``granian --factory mailbeacon.web.app:create_app``).

    Reads settings from MAILBEACON_* and the config file; the schema must
    already be current (``mailbeacon migrate``).
    """
    from mailbeacon import config

    return serving(config.load())
