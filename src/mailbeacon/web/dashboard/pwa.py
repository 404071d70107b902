"""The installed app's two files, served from the root: the service worker
and the web app manifest (static/ holds them)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from mailbeacon.web.dashboard import STATIC

router = APIRouter()


def _revalidated(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


# The service worker is served from the root because a worker controls only
# the paths under its own URL; both files are public (the login page is part
# of the installed app) and are revalidated on each start.
@router.get("/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    return _revalidated("sw.js", "text/javascript")


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest() -> FileResponse:
    return _revalidated("manifest.webmanifest", "application/manifest+json")
