"""Settings → Senders: who may send through the relay, each sender's
"Send through mailbeacon" page (what a mail client needs, step by step) and
the outgoing queue, through relay/accounts.py like `mailbeacon senders`.

A new SMTP password (after creating a sender or resetting its password) is
rendered in the response to that POST and nowhere else: never in a URL, and
not kept on the server, so no other request can show it (the same as a new
API key on Settings). Reloading that page asks the browser to send the form
again; a reset then makes a newer password, which is the one shown. Every
other form redirects (post/redirect/get). The upstream URL typed into the
form may hold a password: it is sealed at once and never written back into
a page, not even when the form is refused; pages show it without it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.node import Node
from mailbeacon.relay import accounts
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.store import outgoing
from mailbeacon.store import senders as store
from mailbeacon.store.senders import TRACK_MODES, Sender, SenderExists
from mailbeacon.web.dashboard.auth import Post, User
from mailbeacon.web.dashboard.render import not_found, page
from mailbeacon.web.dashboard.send_settings import copy_state, retry_words, smtp_settings
from mailbeacon.web.deps import NodeDep

PATH = "/settings/senders"
RECENT = 50  # copies on a sender's page; the list page shows the newest of all senders

TRACK_WORDS = {
    "off": "Off: copies go out unchanged",
    "opens": "Opens: a pixel in each copy (the safe choice for 1-to-1 mail)",
    "clicks": "Clicks: tracked links, no pixel",
    "all": "Opens and clicks",
}


def _link(email: str) -> str:
    return f"{PATH}/{quote(email, safe='@')}"


router = APIRouter()


def queue(sender_id: int | None, limit: int, node: Node) -> list[dict[str, Any]]:
    rows = outgoing.copies(node.engine, sender_id=sender_id, limit=limit)
    return [{**r, "view": copy_state(r)} for r in rows]


def no_sender(request: Request, email: str) -> HTMLResponse:
    return not_found(request, f"No sender {email[:80]!r}. See Settings → Senders for the list.")


def list_page(request: Request, node: Node, status: int = 200, **extra: Any) -> HTMLResponse:
    everyone = store.all_senders(node.engine)
    ctx = {
        "senders": everyone,
        "waiting": outgoing.waiting_by_sender(node.engine),
        "names": {s.id: s.email for s in everyone},
        "copies": queue(None, 30, node),
        "track_modes": TRACK_MODES,
        "track_words": TRACK_WORDS,
        "link": _link,
        "retry": retry_words(node.settings),
        **extra,
    }
    return page(request, "senders.html", ctx, status=status)


def sender_page(
    request: Request, sender: Sender, node: Node, status: int = 200, **extra: Any
) -> HTMLResponse:
    ctx = {
        "sender": sender,
        "smtp": smtp_settings(node.settings, request.url.hostname),
        "copies": queue(sender.id, RECENT, node),
        "track_modes": TRACK_MODES,
        "track_words": TRACK_WORDS,
        "link": _link,
        "retry": retry_words(node.settings),
        **extra,
    }
    return page(request, "sender.html", ctx, status=status)


@router.get(PATH, response_class=HTMLResponse, include_in_schema=False)
def senders(request: Request, _user: User, node: NodeDep) -> HTMLResponse:
    # The note after removing comes back in the query string and is shown
    # only when it is true: a crafted link cannot claim a sender is gone.
    removed = request.query_params.get("removed", "")[:320]
    if removed and "@" in removed and store.by_email(node.engine, removed) is None:
        return list_page(request, node, removed=removed)
    return list_page(request, node)


@router.post(PATH, response_class=HTMLResponse, include_in_schema=False)
def add_sender(request: Request, posted: Post, node: NodeDep) -> HTMLResponse:
    email = posted.form.get("email", "").strip()[:320]
    upstream = posted.form.get("upstream", "")[:2000]
    track = posted.form.get("track", "opens")
    try:
        _sid, password = accounts.create(node.engine, node.settings, email, upstream, track)
    except SenderExists:
        error = f"{email.lower()} is already a sender: open it below to reset its password."
        return list_page(request, node, 422, error=error, email_input=email, track_input=track)
    except (ValueError, SecretKeyError) as exc:
        error = str(exc).replace(repr(upstream.strip()[:80]), "the URL")
        return list_page(request, node, 422, error=error, email_input=email, track_input=track)
    sender = store.by_email(node.engine, accounts.check_address(email))
    assert sender is not None  # just created
    return sender_page(request, sender, node, 201, new_password=password, created=True)


@router.get(PATH + "/{email}", response_class=HTMLResponse, include_in_schema=False)
def sender(request: Request, email: str, _user: User, node: NodeDep) -> HTMLResponse:
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    saved = request.query_params.get("saved") == "track"
    return sender_page(request, found, node, track_saved=saved)


@router.post(PATH + "/{email}/password", response_class=HTMLResponse, include_in_schema=False)
def reset_password(request: Request, email: str, _posted: Post, node: NodeDep) -> HTMLResponse:
    found = store.by_email(node.engine, email.strip().lower())
    password = accounts.reset_password(node.engine, found.email) if found else None
    if found is None or password is None:
        return no_sender(request, email)
    return sender_page(request, found, node, new_password=password)


@router.post(PATH + "/{email}/track", include_in_schema=False)
def set_track(request: Request, email: str, posted: Post, node: NodeDep) -> Response:
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    track = posted.form.get("track", "")
    if track not in TRACK_MODES:
        error = f"Choose one of: {', '.join(TRACK_MODES)}."
        return sender_page(request, found, node, 422, track_error=error)
    accounts.change(node.engine, node.settings, found.email, track=track)
    return RedirectResponse(_link(found.email) + "?saved=track", status_code=303)


@router.get(PATH + "/{email}/remove", response_class=HTMLResponse, include_in_schema=False)
def confirm_remove(request: Request, email: str, _user: User, node: NodeDep) -> HTMLResponse:
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    waiting = outgoing.waiting_by_sender(node.engine).get(found.id, 0)
    return page(request, "sender_remove.html", {"sender": found, "waiting": waiting, "link": _link})


@router.post(PATH + "/{email}/remove", include_in_schema=False)
def remove_sender(request: Request, email: str, _posted: Post, node: NodeDep) -> Response:
    email = email.strip().lower()
    if not store.remove(node.engine, email):
        return no_sender(request, email)
    return RedirectResponse(f"{PATH}?removed={quote(email)}", status_code=303)
