"""``/api/v1/mailboxes``: watched mailboxes (a module-level router)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from mailbeacon.mailboxes import service
from mailbeacon.secretbox import SecretKeyError
from mailbeacon.web.api import ERRORS, ApiError, Auth
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["mailboxes"])


class MailboxIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, examples=["ana@example.com"])
    imap: str = Field(
        min_length=8,
        max_length=2000,
        description="imap://user:password@host:port (STARTTLS; ?tls=none for plain) "
        "or imaps://...; the password is stored encrypted and never shown again",
        examples=["imaps://ana%40example.com:secret@imap.example.com:993"],
    )


class MailboxOut(BaseModel):
    email: str
    imap: str = Field(description="the URL without its password")
    state: str = Field(description="new, ok or failing")
    last_check_at: str | None
    last_error: str | None
    failures: int
    next_try_at: str | None
    watched_by: str | None = Field(description="the serve node holding the mailbox's lease")


@router.post("/api/v1/mailboxes", response_model=MailboxOut, status_code=201, responses=ERRORS)
def add_mailbox(body: MailboxIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        box, _ = service.add(node.engine, node.settings, body.email, body.imap)
    except (service.BadURL, SecretKeyError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return service.public(box)


@router.get("/api/v1/mailboxes", response_model=list[MailboxOut], responses=ERRORS)
def list_mailboxes(node: NodeDep, _k: Auth) -> list[dict[str, Any]]:
    return service.listing(node.engine)


@router.delete("/api/v1/mailboxes/{email}", status_code=204, responses=ERRORS)
def remove_mailbox(email: Annotated[str, Path(max_length=320)], node: NodeDep, _k: Auth) -> None:
    if not service.remove(node.engine, email):
        raise ApiError(404, "not_found", f"no mailbox {email[:80]!r}")
