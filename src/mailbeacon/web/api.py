"""What every JSON API router shares: ids, the error shape and its
handlers, and the API key check (``Auth``).

The routes are module-level routers, one resource each (api_campaigns,
api_messages, api_events, api_operations, api_instrument, api_reports,
api_privacy, api_hooks, api_mailboxes, api_reminders), included in order by
web/app.py. Their handlers are plain ``def``: FastAPI runs them in its
thread pool, so store reads never block the event loop that serves the
tracking paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailbeacon.messages import NotFound
from mailbeacon.store import keys
from mailbeacon.store.db import is_store_down
from mailbeacon.store.messages import Conflict
from mailbeacon.timefmt import parse
from mailbeacon.web.deps import get_node

log = logging.getLogger("mailbeacon.api")

# Ids are 64-bit integers in the store; a larger number in a path or body
# would overflow the database driver (a 500), so it is refused as invalid.
MAX_ID = 2**63 - 1
DbId = Annotated[int, Path(ge=0, le=MAX_ID)]
Id = Annotated[int, Field(ge=0, le=MAX_ID)]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ErrorOut(BaseModel):
    error: str
    message: str


def authorised(request: Request) -> keys.ApiKey:
    node = get_node(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <key>'; create a key "
            "with `mailbeacon keys create --name NAME`",
        )
    key = keys.check_api_key(node.engine, token.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "this API key is unknown or revoked")
    if request.client is not None:
        node.saw_sender(request.client.host, request.headers.get("x-forwarded-for"))
    return key


Auth = Annotated[keys.ApiKey, Depends(authorised)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key"},
    404: {"model": ErrorOut, "description": "no such object"},
    422: {"model": ErrorOut, "description": "invalid input"},
}


def sent_at_of(value: str | float | None) -> float | None:
    """The request's sent_at, or a 422 (NaN and years past 9999 included, never a 500)."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"sent_at must be ISO 8601 or unix seconds: {exc}") from None


async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.code, "message": exc.message}, exc.status, headers=headers)


async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return JSONResponse({"error": "invalid", "message": "; ".join(parts)}, 422)


async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse({"error": code, "message": str(exc.detail)}, exc.status_code)


STORE_DOWN = "mailbeacon cannot reach its database just now; try again in a few seconds"


async def _store_down(request: Request, exc: Exception) -> Response:
    """503 with Retry-After while the store cannot be reached (any route):
    JSON on the API, a short page elsewhere. Other store errors stay bugs."""
    if not is_store_down(exc):
        raise exc
    log.error("%s %s: the store failed: %s", request.method, request.url.path,
              str(exc).splitlines()[0])  # fmt: skip
    headers = {"Retry-After": "5"}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "store_unavailable", "message": STORE_DOWN}, 503, headers)
    page = f"<!doctype html><meta charset=utf-8><title>mailbeacon</title><p>{STORE_DOWN}.</p>"
    return HTMLResponse(page, 503, headers)


def fail(exc: Exception) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", str(exc))
    return ApiError(422, "invalid", str(exc))


# What the API answers for its errors: one line in {"error", "message"}
# (app.py passes these to FastAPI).
ERROR_HANDLERS: dict[
    int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]
] = {
    ApiError: _api_error,
    RequestValidationError: _invalid,
    StarletteHTTPException: _http,
    SQLAlchemyError: _store_down,
}
