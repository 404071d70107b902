"""Settings → Senders: who may send through the relay, each sender's
"Send through mailbeacon" page (what a mail client needs, step by step) and
the outgoing queue, through relay/accounts.py like `mailbeacon senders`.

A sender's page also edits what `mailbeacon senders set` does: the upstream
(host, port, security, login, password: an empty password keeps the saved
one, which is never shown back) and the extra From addresses, with the same
checks (relay/accounts.py). The queue pages back with ``?before=<copy id>``
(the last copy shown) and filters with ``?state=``.

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
from urllib.parse import quote, urlencode

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
NEWEST = 30  # copies of every sender on the list page
UPSTREAM_SECURITY = {
    "starttls": "STARTTLS (port 587)",
    "implicit": "SSL/TLS (port 465)",
    "none": "None (a server on your own network only)",
}
SAVED = ("track", "upstream", "also")  # the notes after a form saved (?saved=...)

TRACK_WORDS = {
    "off": "Off: copies go out unchanged",
    "opens": "Opens: a pixel in each copy (the safe choice for 1-to-1 mail)",
    "clicks": "Clicks: tracked links, no pixel",
    "all": "Opens and clicks",
}


def _link(email: str) -> str:
    return f"{PATH}/{quote(email, safe='@')}"


router = APIRouter()


def queue(
    request: Request, sender_id: int | None, limit: int, path: str, node: Node
) -> dict[str, Any]:
    """One page of copies, newest first: ``?before=ID`` starts below the last
    copy of the page before (ids only grow, so new copies never shift a page)
    and ``?state=`` keeps one state. Anything else in them is ignored."""
    given = request.query_params
    before_s, state = given.get("before", ""), given.get("state", "")
    digits = before_s.isascii() and before_s.isdigit() and len(before_s) <= 18  # a BIGINT
    before = int(before_s) if digits else None
    state = state if state in outgoing.STATES else ""
    rows = outgoing.copies(
        node.engine, sender_id=sender_id, limit=limit + 1, before=before, state=state or None
    )
    keep = {"state": state} if state else {}
    older = rows[limit - 1]["id"] if len(rows) > limit else None
    return {
        "copies": [{**r, "view": copy_state(r)} for r in rows[:limit]],
        "queue_path": path,
        "queue_state": state,
        "queue_states": outgoing.STATES,
        "queue_older": before is not None,
        "older_url": f"{path}?{urlencode({**keep, 'before': older})}#copies" if older else None,
        "newest_url": f"{path}?{urlencode(keep)}#copies" if before is not None else None,
    }


def no_sender(request: Request, email: str) -> HTMLResponse:
    return not_found(request, f"No sender {email[:80]!r}. See Settings → Senders for the list.")


def list_page(request: Request, node: Node, status: int = 200, **extra: Any) -> HTMLResponse:
    everyone = store.all_senders(node.engine)
    ctx = {
        "senders": everyone,
        "waiting": outgoing.waiting_by_sender(node.engine),
        "names": {s.id: s.email for s in everyone},
        **queue(request, None, NEWEST, PATH, node),
        "track_modes": TRACK_MODES,
        "track_words": TRACK_WORDS,
        "link": _link,
        "retry": retry_words(node.settings),
        **extra,
    }
    return page(request, "senders.html", ctx, status=status)


def _saved_upstream(sender: Sender) -> dict[str, Any]:
    """The upstream form's fields as saved (never the password)."""
    try:
        up = accounts.parse_upstream(sender.upstream)
    except ValueError:  # saved before the host was checked: the form starts empty
        return {"host": "", "port": "", "security": "starttls", "user": ""}
    return {"host": up.host, "port": up.port, "security": up.tls, "user": up.user or ""}


def _sentence(exc: Exception) -> str:
    """accounts' one-line messages (worded for the CLI) as a sentence."""
    said = str(exc)
    return said[:1].upper() + said[1:] + ("" if said.endswith(".") else ".")


def sender_page(
    request: Request, sender: Sender, node: Node, status: int = 200, **extra: Any
) -> HTMLResponse:
    ctx = {
        "sender": sender,
        "smtp": smtp_settings(node.settings, request.url.hostname),
        **queue(request, sender.id, RECENT, _link(sender.email), node),
        "upstream": _saved_upstream(sender),
        "upstream_security": UPSTREAM_SECURITY,
        "saved": "",
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
    saved = request.query_params.get("saved", "")
    return sender_page(request, found, node, saved=saved if saved in SAVED else "")


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


@router.post(PATH + "/{email}/upstream", include_in_schema=False)
def set_upstream(request: Request, email: str, posted: Post, node: NodeDep) -> Response:
    """Like `senders set ADDR --upstream URL`, from the form's fields. The
    queue reads the sender again for each try: waiting copies use the new one."""
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    f = posted.form
    typed = {k: f.get(k, "")[:1000] for k in ("host", "port", "security", "user")}
    try:
        up = accounts.upstream_from(
            typed["host"], typed["port"], typed["security"], typed["user"],
            f.get("password", "")[:2000],
        )  # fmt: skip
        accounts.change_upstream(node.engine, node.settings, found.email, up)
    except (ValueError, SecretKeyError) as exc:
        error = _sentence(exc)
        return sender_page(request, found, node, 422, upstream_error=error, upstream_input=typed)
    return RedirectResponse(_link(found.email) + "?saved=upstream#upstream", status_code=303)


def _save_also(request: Request, found: Sender, node: Node, address: str, add: bool) -> Response:
    """Add or drop one of the sender's other From addresses; accounts.change
    checks each address and that no other sender has it (as `--also` does)."""
    try:
        if add:
            address = accounts.check_address(address)
            if address in found.addresses:
                raise ValueError(f"{address} is already an address of this sender")
        also = [*found.also, address] if add else [a for a in found.also if a != address]
        accounts.change(node.engine, node.settings, found.email, also=also)
    except ValueError as exc:  # dropping: one kept is another's, saved before that was checked
        typed = address if add else ""
        return sender_page(request, found, node, 422, also_error=_sentence(exc), also_input=typed)
    return RedirectResponse(_link(found.email) + "?saved=also#also", status_code=303)


@router.post(PATH + "/{email}/also", include_in_schema=False)
def add_also(request: Request, email: str, posted: Post, node: NodeDep) -> Response:
    """Like `senders set ADDR --also ...` with one more address."""
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    return _save_also(request, found, node, posted.form.get("address", "")[:320], add=True)


@router.post(PATH + "/{email}/also/remove", include_in_schema=False)
def remove_also(request: Request, email: str, posted: Post, node: NodeDep) -> Response:
    """The login may no longer send as this address (from its next SMTP session)."""
    found = store.by_email(node.engine, email.strip().lower())
    if found is None:
        return no_sender(request, email)
    address = posted.form.get("address", "").strip().lower()
    if address not in found.also:  # already gone (a second click, another tab)
        return RedirectResponse(_link(found.email) + "#also", status_code=303)
    return _save_also(request, found, node, address, add=False)
