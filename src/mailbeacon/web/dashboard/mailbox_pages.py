"""Settings → Mailboxes: the watched mailboxes (reply detection) in the
dashboard, through the same service the CLI and /api/v1/mailboxes use.

The password typed into the form is sealed at once and never written back
into a page, not even when the form is refused: the URL field comes back
empty and the listing shows each URL without its password.
Removing asks first on a page of its own (no script, like deleting a campaign).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.mailboxes import service
from mailbeacon.node import Node
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.web.dashboard.auth import Post, User
from mailbeacon.web.dashboard.render import not_found, page
from mailbeacon.web.deps import NodeDep

PATH = "/settings/mailboxes"


router = APIRouter()


def mailboxes_page(request: Request, node: Node, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = {"mailboxes": service.listing(node.engine), **extra}
    return page(request, "mailboxes.html", ctx, status=status)


@router.get(PATH, response_class=HTMLResponse, include_in_schema=False)
def mailboxes(request: Request, _user: User, node: NodeDep) -> HTMLResponse:
    # The notes after adding and removing come back in the query string:
    # each is shown only when it is true of the list, so a crafted link
    # cannot make the page claim a mailbox is watched when it is not.
    q, boxes = request.query_params, service.listing(node.engine)
    emails = {b["email"] for b in boxes}
    added, removed = q.get("added", ""), q.get("removed", "")
    ctx: dict[str, Any] = {"mailboxes": boxes}
    if added in emails:
        ctx.update(added=added, created=q.get("new") == "1")
    if removed and "@" in removed and removed not in emails:
        ctx.update(removed=removed[:320])
    return page(request, "mailboxes.html", ctx)


@router.post(PATH, include_in_schema=False)
def add_mailbox(request: Request, posted: Post, node: NodeDep) -> Response:
    email = posted.form.get("email", "").strip()[:320]
    imap = posted.form.get("imap", "")[:2000]
    try:
        box, created = service.add(node.engine, node.settings, email, imap)
    except (service.BadURL, SecretKeyError) as exc:
        # A URL that cannot be parsed at all is quoted in the message (its
        # first 80 characters), and may hold the password: not on a page.
        error = str(exc).replace(repr(imap[:80]), "the URL")
        return mailboxes_page(request, node, 422, error=error, email_input=email)
    # Post/redirect/get: reloading the page to watch the state never adds
    # the mailbox again (which would reset its state and backoff).
    added = f"{PATH}?added={quote(box.email)}&new={int(created)}"
    return RedirectResponse(added, status_code=303)


@router.get(f"{PATH}/remove", response_class=HTMLResponse, include_in_schema=False)
def confirm_remove(request: Request, _user: User, node: NodeDep) -> HTMLResponse:
    email = request.query_params.get("email", "").strip().lower()[:320]
    box = next((b for b in service.listing(node.engine) if b["email"] == email), None)
    if box is None:
        return not_found(request, f"No watched mailbox {email[:80]!r}.")
    return page(request, "mailbox_remove.html", {"box": box})


@router.post(f"{PATH}/remove", include_in_schema=False)
def remove_mailbox(request: Request, posted: Post, node: NodeDep) -> Response:
    email = posted.form.get("email", "")[:320]
    if not service.remove(node.engine, email):
        return not_found(request, f"No watched mailbox {email[:80]!r}.")
    return RedirectResponse(f"{PATH}?removed={quote(email.strip().lower())}", status_code=303)
