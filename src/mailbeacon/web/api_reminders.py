"""``/api/v1/reminders``: nudges when a message was not opened, clicked or
replied in time, and the per-sender defaults (a module-level router)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mailbeacon import reminders
from mailbeacon.store import reminders as store
from mailbeacon.web.api import ERRORS, MAX_ID, ApiError, Auth, DbId, Id
from mailbeacon.web.deps import NodeDep

router = APIRouter(tags=["reminders"])
Condition = Literal["not_opened", "not_clicked", "not_replied"]


class ReminderIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    message_id: Id | None = None
    campaign_id: Id | None = Field(default=None, description="a reminder for each of its messages")
    if_: Condition = Field(alias="if")
    after: str = Field(
        max_length=40,
        examples=["3d", "2 business days"],
        description="from sent_at: m, h, d, w, or business days (skip weekends)",
    )
    tz: str | None = Field(
        default=None,
        max_length=64,
        description="IANA zone for days (default: the timezone setting)",
    )

    @model_validator(mode="after")
    def _one_target(self) -> ReminderIn:
        if (self.message_id is None) == (self.campaign_id is None):
            raise ValueError("give exactly one of message_id and campaign_id")
        return self


class ReminderOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    message_id: int
    if_: str = Field(alias="if")
    after: str
    tz: str
    due_at: str | None
    state: str = Field(description="pending, fired or cancelled")
    reason: str | None = Field(
        description="why it was cancelled: opened, clicked, replied, by_user"
    )
    event_id: int | None = Field(description="the reminder event it fired as")
    default_of: str | None
    created_at: str | None
    done_at: str | None


class CampaignReminders(BaseModel):
    campaign_id: int
    reminders: list[ReminderOut]


class DefaultIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    if_: Condition = Field(alias="if")
    after: str = Field(max_length=40, examples=["3 business days"])
    tz: str | None = Field(default=None, max_length=64)


class DefaultOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(description="a relay sender's address, or * for every message")
    if_: str = Field(alias="if")
    after: str
    tz: str


@router.post(
    "/api/v1/reminders",
    response_model=ReminderOut | CampaignReminders,
    status_code=201,
    responses=ERRORS,
)
def new_reminder(body: ReminderIn, node: NodeDep, _k: Auth) -> dict[str, Any]:
    try:
        made = reminders.create(
            node.engine, condition=body.if_, after=body.after,
            tz=body.tz or node.settings.timezone, message_id=body.message_id,
            campaign_id=body.campaign_id,
        )  # fmt: skip
    except LookupError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except reminders.Invalid as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    if body.message_id is not None:
        return made[0]
    return {"campaign_id": body.campaign_id, "reminders": made}


@router.get("/api/v1/reminders", response_model=list[ReminderOut], responses=ERRORS)
def list_reminders(
    node: NodeDep,
    _k: Auth,
    message_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    state: Literal["pending", "fired", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    found = store.rows(node.engine, message_id=message_id, state=state, limit=limit)
    return [reminders.public(r) for r in found]


@router.delete("/api/v1/reminders/{reminder_id}", status_code=204, responses=ERRORS)
def cancel_reminder(reminder_id: DbId, node: NodeDep, _k: Auth) -> None:
    import time

    if not store.cancel(node.engine, reminder_id, time.time()):
        raise ApiError(404, "not_found", f"no pending reminder {reminder_id}")


@router.get("/api/v1/reminders/defaults", response_model=list[DefaultOut], responses=ERRORS)
def list_defaults(node: NodeDep, _k: Auth) -> list[dict[str, Any]]:
    return [
        {"sender": d.sender, "if": d.condition, "after": d.after, "tz": d.tz}
        for d in store.defaults(node.engine)
    ]


@router.put("/api/v1/reminders/defaults/{sender}", response_model=DefaultOut, responses=ERRORS)
def set_default(
    sender: Annotated[str, Path(max_length=320)], body: DefaultIn, node: NodeDep, _k: Auth
) -> dict[str, Any]:
    try:
        d = reminders.set_default(node.engine, sender, body.if_, body.after,
                                  body.tz or node.settings.timezone)  # fmt: skip
    except reminders.Invalid as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return {"sender": d.sender, "if": d.condition, "after": d.after, "tz": d.tz}


@router.delete("/api/v1/reminders/defaults/{sender}", status_code=204, responses=ERRORS)
def remove_default(sender: Annotated[str, Path(max_length=320)], node: NodeDep, _k: Auth) -> None:
    if not store.remove_default(node.engine, sender.strip().lower()):
        raise ApiError(404, "not_found", f"no default reminder for {sender[:80]!r}")
