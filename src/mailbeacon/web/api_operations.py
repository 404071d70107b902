"""``/metrics`` and ``/healthz``: what an operator's monitoring reads (a
module-level router)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from mailbeacon import metrics
from mailbeacon.web.api import ERRORS, ApiError, ErrorOut
from mailbeacon.web.deps import NodeDep
from mailbeacon.web.opsaccess import MetricsAccess

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    description="Prometheus text. Open to metrics_networks (default: this machine); "
    "from elsewhere it needs 'Authorization: Bearer <metrics_token>'.",
    responses={401: ERRORS[401], 403: {"model": ErrorOut, "description": "not allowed"}},
)
def prometheus(request: Request, node: NodeDep) -> PlainTextResponse:
    # Built per scrape (one every 15 s or so): parsing a few CIDRs costs
    # microseconds, so nothing needs caching on the node.
    settings = node.settings
    access = MetricsAccess(node.client_ip, settings.metrics_token, settings.metrics_networks)
    refused = access.refusal(
        request.client.host if request.client else "",
        request.headers.get("x-forwarded-for"),
        request.headers.get("authorization", ""),
    )
    if refused:
        raise ApiError(*refused)
    metrics.QUEUE.set(node.recorder.queued)
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/healthz")
def health(node: NodeDep) -> JSONResponse:
    """Whether this process can record (503 while its store is down), its queue,
    an untrusted reverse proxy seen in front, and which `serve --workers`
    process answered (`process`, and `primary` for the one running background jobs)."""
    ok = not node.recorder.down
    proxy = node.proxy_check.found
    return JSONResponse(
        {
            "ok": ok,
            "store": "up" if ok else "down",
            "queued": node.recorder.queued,
            # null, or the untrusted reverse proxy seen in front (web/proxycheck.py)
            "untrusted_proxy": proxy.public() if proxy else None,
            # which serve --workers process answered (web/workers.py)
            "process": os.getpid(),
            "primary": node.primary,
        },
        200 if ok else 503,
    )
