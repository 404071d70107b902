"""Sign-in: server-side sessions, CSRF tokens, the login rate limit, and the
sender cookie that makes the sender's own pixel fetches count as ``self``."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from mailbeacon.node import SENDER_COOKIE, SENDER_COOKIE_DAYS, Node
from mailbeacon.store import accounts
from mailbeacon.store.accounts import Session
from mailbeacon.web.dashboard.render import page
from mailbeacon.web.deps import NodeDep, get_node

SESSION_COOKIE = "mb_session"
# Before there is a session, the login form is protected by a double-submit
# cookie; after, every form carries the session's own token.
LOGIN_CSRF_COOKIE = "mb_login_csrf"


class LoginRequired(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class CsrfFailed(Exception):
    pass


@dataclass
class Posted:
    session: Session
    form: dict[str, str]
    lists: dict[str, list[str]]


def secure(node: Node) -> bool:
    return node.base_url.startswith("https://")


def client_ip(request: Request) -> str:
    node = get_node(request)
    peer = request.client.host if request.client else ""
    return node.client_ip.resolve(peer, request.headers.get("x-forwarded-for"))


async def current(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    sess = await asyncio.to_thread(accounts.get_session, get_node(request).engine, token)
    request.state.mb_session = sess
    return sess


async def require_user(request: Request) -> Session:
    sess = await current(request)
    if sess is None:
        raise LoginRequired(request.url.path)
    node = get_node(request)
    if request.client is not None:
        node.saw_sender(request.client.host, request.headers.get("x-forwarded-for"))
    return sess


async def require_post(request: Request) -> Posted:
    """A signed-in user's form, with its CSRF token checked (403 when wrong)."""
    sess = await require_user(request)
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, sess.csrf):
        raise CsrfFailed()
    flat = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form.keys()}
    return Posted(sess, flat, lists)


User = Annotated[Session, Depends(require_user)]
Post = Annotated[Posted, Depends(require_post)]


def safe_next(value: str | None) -> str:
    """Only local paths: a login link must not become an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


router = APIRouter()

# The two handlers below are the app's (a router has none): dashboard.install
# registers them.


async def to_login(_r: Request, exc: LoginRequired) -> Response:
    return RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303)


async def form_expired(request: Request, _exc: CsrfFailed) -> Response:
    return page(
        request,
        "error.html",
        {
            "title": "Form expired",
            "message": "This form's security token is missing or "
            "wrong (CSRF check). Go back, reload the page and try again.",
        },
        status=403,
    )


def login_page(request: Request, node: Node, status: int = 200, **ctx: object) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    resp = page(
        request,
        "login.html",
        {
            "login_csrf": token,
            "has_users": accounts.has_users(node.engine),
            "next": safe_next(request.query_params.get("next")),
            **ctx,
        },
        status=status,
    )
    resp.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure(node),
        path="/login",
    )
    return resp


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, node: NodeDep) -> HTMLResponse:
    return login_page(request, node)


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, node: NodeDep) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    token, cookie = str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not token or not cookie or not hmac.compare_digest(token, cookie):
        raise CsrfFailed()
    if _signins.waiting >= LOGIN_QUEUE:
        busy = page(
            request,
            "error.html",
            {
                "title": "Sign-in is busy",
                "message": "Too many sign-ins at once; try again in a few seconds.",
            },
            status=503,
        )
        busy.headers["Retry-After"] = "5"
        return busy
    ip = client_ip(request)
    loop = asyncio.get_running_loop()
    _signins.waiting += 1
    try:
        done = await loop.run_in_executor(_signins.pool, attempt, node.engine, email, password, ip)
        if done.session is None:
            if done.wait > 0:
                who = (
                    "for this account from your address"
                    if done.blocked == "account"
                    else "from your network"
                )
                status, error = (
                    429,
                    (
                        f"Too many failed sign-ins {who}. "
                        f"Try again in {int(done.wait // 60) + 1} minute(s)."
                    ),
                )
            else:
                status, error = 401, "Wrong email or password."
            return await loop.run_in_executor(
                _signins.pool, partial(login_page, request, node, status, email=email, error=error)
            )
        value = done.session
    finally:
        _signins.waiting -= 1
    resp = RedirectResponse(safe_next(str(form.get("next") or "/")), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=secure(node),
        path="/",
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    set_sender_cookie(resp, node)
    return resp


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, _posted: Post, node: NodeDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await asyncio.to_thread(accounts.end_session, node.engine, token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# A password check is scrypt: ~70 ms of CPU and 16 MB each. Sign-ins run one
# at a time on a thread of their own, apart from the default pool in which
# the pixel path reads a message's facts on its first hit: a login flood then
# takes at most one core and never queues in front of a pixel. Past
# LOGIN_QUEUE waiting, a sign-in is answered 503 at once (a person retries).
LOGIN_QUEUE = 16


class _SignIns:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailbeacon-login")
        self.waiting = 0


_signins = _SignIns()


@dataclass
class Attempt:
    session: str | None = None  # the new session's cookie value on success
    wait: float = 0.0  # seconds blocked by a rate limit
    blocked: str = ""  # "account" or "network"


def attempt(engine: Engine, email: str, password: str, ip: str) -> Attempt:
    """One sign-in, start to end, on the sign-in thread."""
    wait, what = accounts.login_block(engine, email, ip)
    if wait > 0:
        return Attempt(wait=wait, blocked=what)
    uid = accounts.authenticate(engine, email, password)
    if uid is None:
        accounts.record_failure(engine, email, ip)
        return Attempt()
    accounts.clear_failures(engine, email, ip)
    value, _sess = accounts.start_session(engine, uid)
    return Attempt(session=value)


def set_sender_cookie(resp: Response, node: Node) -> None:
    """Mark this browser as the sender's: its pixel fetches become ``self``.

    Compose windows load the pixel as a cross-site image, and browsers send
    only SameSite=None cookies with those, which must be Secure; over plain
    http it stays Lax (it still marks previews opened from the dashboard).
    Webmail that proxies images (Gmail) never forwards cookies: the
    compose-time rule covers those.
    """
    https = secure(node)
    resp.set_cookie(
        SENDER_COOKIE,
        node.signer().sender_cookie(int(time.time())),
        max_age=SENDER_COOKIE_DAYS * 86400,
        httponly=True,
        samesite="none" if https else "lax",
        secure=https,
        path="/",
    )
