"""Reminders: a nudge when a message was not opened, clicked or replied in time.

A reminder waits ``after`` ("3d", "36h", "2 business days") from the
message's ``sent_at`` (or from when the reminder was made, for a message
not sent yet), counted in the sender's time zone: days keep the wall-clock
time across DST changes, and business days skip Saturdays and Sundays. It
fires once through the sender's channels (a ``reminder`` event: the
dashboard's live feed, webhook ``message.reminder``, the notify_email
address) unless the awaited event came first: a first human open, click or
human reply cancels it in the same transaction (``cancel_hook``), and the
condition is checked again when it fires.

A per-sender default makes one for every message the sender sends through
the relay (``sender`` = the relay login), or for every tracked message
(``sender`` = "*"): the reminder loop makes them for messages sent since the
default was set, at most ``DEFAULT_WINDOW`` back.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from mailbeacon.model import Event
from mailbeacon.periodic import Periodic
from mailbeacon.reports import timeline
from mailbeacon.store import reminders as store
from mailbeacon.timefmt import iso

log = logging.getLogger("mailbeacon.reminders")

CONDITIONS = ("not_opened", "not_clicked", "not_replied")
LOOP_SECONDS = 5.0  # how late a due reminder may fire; a pass is one indexed query
DEFAULT_WINDOW = 30 * 86400.0
_UNITS = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
    "bd": "business_days", "business day": "business_days", "business days": "business_days",
    "working day": "business_days", "working days": "business_days",
}  # fmt: skip
_AFTER = re.compile(r"^\s*(\d{1,4})\s*([a-z]+(?:\s+days?)?)\s*$", re.IGNORECASE)


class Invalid(ValueError):
    """One line that says what to write instead."""


@dataclass(frozen=True)
class Delay:
    amount: int
    unit: str  # minutes | hours | days | weeks | business_days


def parse_after(text: str) -> Delay:
    m = _AFTER.match(text or "")
    unit = _UNITS.get(" ".join(m.group(2).lower().split())) if m else None
    if m is None or unit is None or int(m.group(1)) < 1:
        raise Invalid(
            f"after {text[:40]!r} is not a delay; write e.g. 3d, 36h, 90m, 1w or 2 business days"
        )
    return Delay(int(m.group(1)), unit)


def zone(name: str) -> ZoneInfo:
    try:
        return timeline.zone(name)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def check_condition(condition: str) -> str:
    if condition not in CONDITIONS:
        raise Invalid(f"if must be one of {', '.join(CONDITIONS)}, not {condition[:30]!r}")
    return condition


def due_at(base: float, delay: Delay, tz: ZoneInfo) -> float:
    """When a reminder made at ``base`` (unix seconds) for ``delay`` is due."""
    if delay.unit in ("minutes", "hours"):
        return base + delay.amount * (60 if delay.unit == "minutes" else 3600)
    local = datetime.fromtimestamp(base, tz)
    if delay.unit in ("days", "weeks"):
        days = delay.amount * (7 if delay.unit == "weeks" else 1)
        target = local.date() + timedelta(days=days)
    else:
        target, left = local.date(), delay.amount
        while left:
            target += timedelta(days=1)
            if target.weekday() < 5:  # Monday..Friday
                left -= 1
    # Same wall-clock time on the target day, in the sender's zone (DST-safe).
    return datetime.combine(target, local.timetz().replace(tzinfo=None), tzinfo=tz).timestamp()


# --- making reminders -----------------------------------------------------------


def create(
    engine: Engine,
    *,
    condition: str,
    after: str,
    tz: str,
    message_id: int | None = None,
    campaign_id: int | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Reminders for one message, or for every message of a campaign."""
    check_condition(condition)
    delay, zone_ = parse_after(after), zone(tz)
    now = now if now is not None else time.time()
    with engine.begin() as conn:
        found = store.targets(conn, message_id, campaign_id)
        ids = []
        for mid, sent_at in found:
            base = sent_at if sent_at is not None else now
            rid = store.create(
                conn, message_id=int(mid), condition=condition, after=after, tz=zone_.key,
                due_at=due_at(base, delay, zone_), now=now,
            )  # fmt: skip
            ids.append(rid)
    return [public(store.get(engine, rid) or {}) for rid in ids if rid is not None]


def set_default(engine: Engine, sender: str, condition: str, after: str, tz: str) -> store.Default:
    """A sender's standing reminder (replaces the one it had)."""
    sender = sender.strip().lower()
    if sender != store.ALL_SENDERS and "@" not in sender:
        raise Invalid("the sender is a relay sender's address, or * for every message")
    check_condition(condition)
    parse_after(after)
    tz = zone(tz).key
    store.set_default(engine, sender, condition, after, tz)
    return next(d for d in store.defaults(engine) if d.sender == sender)


def make_defaults(engine: Engine, now: float) -> int:
    """Reminders the per-sender defaults owe: one per message sent since."""
    made = 0
    for d in store.defaults(engine):
        delay, zone_ = parse_after(d.after), zone(d.tz)
        with engine.begin() as conn:
            since = max(d.created_at, now - DEFAULT_WINDOW)
            for mid, sent_at in store.without_default(conn, d, since):
                if store.create(
                    conn, message_id=mid, condition=d.condition, after=d.after, tz=d.tz,
                    due_at=due_at(sent_at, delay, zone_), default_of=d.sender, now=now,
                ) is not None:  # fmt: skip
                    made += 1
    return made


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "message_id": row["message_id"],
        "if": row["condition"],
        "after": row["after"],
        "tz": row["tz"],
        "due_at": iso(row["due_at"]),
        "state": row["state"],
        "reason": row["reason"],
        "event_id": row["event_id"],
        "default_of": row["default_of"],
        "created_at": iso(row["created_at"]),
        "done_at": iso(row["done_at"]),
    }


# --- cancelling and firing ---------------------------------------------------------


def cancel_hook(
    cur: Any, mark: str, _pg: bool, _batch: Sequence[Event], transitions: list[Any]
) -> None:
    """Recorder hook: a message that just became opened, clicked or replied
    cancels the reminders that waited for it, in the same transaction."""
    pairs = [(e.message_id, flag) for e, flag, on in transitions if on]
    if pairs:
        store.cancel_met(cur, mark, pairs, time.time())


class ReminderLoop:
    """Makes default reminders and fires due ones; every node runs one."""

    def __init__(
        self,
        engine: Engine,
        hooks: Sequence[store.TxHook],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.hooks = hooks
        self.clock = clock
        self._loop = Periodic(self.run_once, LOOP_SECONDS, "reminders")

    def run_once(self, now: float | None = None) -> store.Outcome:
        now = now if now is not None else self.clock()
        make_defaults(self.engine, now)
        outcome = store.fire_due(self.engine, self.hooks, now)
        for e in outcome.fired:
            log.info("reminder fired: message %d %s", e.message_id, e.label)
        return outcome

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


_WORDS = {
    "not_opened": "has not opened",
    "not_clicked": "has not clicked a link in",
    "not_replied": "has not replied to",
}


def reminder_email(mail: EmailMessage, message: dict[str, Any], event: dict[str, Any]) -> None:
    """The notify_email text of a fired reminder."""
    who = message["recipient"]
    subject = message.get("subject") or "(no subject)"
    what = _WORDS.get(event.get("label") or "", "has not answered")
    after = ", ".join(r.split(":", 1)[1] for r in event.get("reasons") or [] if ":" in r)
    mail["Subject"] = f"Follow up? {who} {what} \u201c{subject}\u201d"
    mail.set_content(
        f"{who} {what} your email \u201c{subject}\u201d"
        + (f" after {after}" if after else "")
        + ".\n\n"
        f"Sent: {message.get('sent_at') or 'not recorded'}\nDetails: {message['url']}\n\n"
        "Sent by mailbeacon because you set a reminder for this message.\n"
    )
