"""The privacy actions on one recipient under /api/v1/recipients: export,
erase, opt out and back in (a module-level router).

They change what running nodes may record, so this node forgets its cached
messages at once and the others within their 10 s refresh (node.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from mailbeacon.node import Node
from mailbeacon.store import privacy
from mailbeacon.web.api import ERRORS, ApiError, Auth
from mailbeacon.web.api_events import EventOut
from mailbeacon.web.api_messages import MessageBase
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["privacy"])


class LinkOut(BaseModel):
    position: int
    url: str


class StoredMessage(MessageBase):
    links: list[LinkOut]
    events: list[EventOut]


class RecipientData(BaseModel):
    recipient: str
    opted_out: bool
    messages: list[StoredMessage]


class Erased(BaseModel):
    recipient: str
    messages: int
    events: int
    deliveries: int = Field(description="webhook and email deliveries about the person")


class OptOut(BaseModel):
    recipient: str
    opted_out: bool
    changed: bool


Address = Annotated[str, Path(min_length=3, max_length=320, examples=["ana@example.com"])]


def _address(address: str) -> str:
    # Routes take {address:path}: "a/b@example.com" is a valid address (RFC
    # 5322 allows "/" in the local part), sent as is or as a%2Fb@... A "/"
    # after the "@" is no address but a path this route does not have.
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or "/" in domain:
        raise ApiError(422, "invalid", "address must be an email address such as ana@example.com")
    return address.strip()


@router.get(
    "/api/v1/recipients/{address:path}/export",
    response_model=RecipientData,
    responses=ERRORS,
)
def recipient_export(address: Address, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return privacy.recipient_export(node.engine, _address(address))


def erase(node: Node, address: str) -> dict[str, Any]:
    done = privacy.recipient_erase(node.engine, _address(address))
    node.memory.clear()  # this node at once; the others on their next refresh
    return {"recipient": address.strip(), **done}


@router.delete(
    "/api/v1/recipients/{address:path}/erase",
    response_model=Erased,
    responses=ERRORS,
    description="Delete the address's messages, links, events, per-message rollups and "
    "webhook/email deliveries (matched in any case; the address may hold a '/'). "
    "Anonymous campaign counters stay, so reported totals do not change.",
)
def recipient_erase(address: Address, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return erase(node, address)


def optout(node: Node, address: str, out: bool) -> dict[str, Any]:
    changed = privacy.set_optout(node.engine, _address(address), out)
    node.memory.clear()
    return {"recipient": address.strip().lower(), "opted_out": out, "changed": changed}


@router.post(
    "/api/v1/recipients/{address:path}/optout",
    response_model=OptOut,
    responses=ERRORS,
    description="Stop recording hits for this address (its pixel is still served).",
)
def recipient_optout(address: Address, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return optout(node, address, True)


@router.delete(
    "/api/v1/recipients/{address:path}/optout",
    response_model=OptOut,
    responses=ERRORS,
)
def recipient_optin(address: Address, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return optout(node, address, False)


# Last: "{address:path}" alone would also match ".../optout" and ".../erase".
@router.delete(
    "/api/v1/recipients/{address:path}",
    response_model=Erased,
    responses=ERRORS,
    description="The same as DELETE /api/v1/recipients/{address}/erase.",
)
def recipient_delete(address: Address, node: NodeDep, _k: Auth) -> dict[str, Any]:
    return erase(node, address)
