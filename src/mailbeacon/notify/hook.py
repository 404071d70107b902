"""Outbox rows, written inside the recorder's batch transaction.

Webhook rows are fanned out with one ``INSERT ... SELECT`` from ``webhooks``
per event type, so the hook never reads subscriptions out of a cache that
another node may have changed: the subscription list is read in the same
transaction as the event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from mailbeacon.model import HUMAN_OPEN_LABELS, Event
from mailbeacon.store import outbox as outbox_store
from mailbeacon.store.rollups import Transition

EVENT_TYPES = (
    "message.first_open",  # the message's first human open (or a human click implying one)
    "message.first_click",  # the message's first human click
    "message.open",  # every human open (direct or through a mailbox proxy)
    "message.click",  # every human click
    "message.replied",  # every human reply found in a watched mailbox
    "message.auto_replied",  # an out-of-office or other auto-reply
    "message.bounced",  # a delivery failure report for the message
    "message.reminder",  # a reminder fired: not opened / clicked / replied in time
)
REPLY_TYPES = {  # reply label -> event type
    "human": "message.replied",
    "auto_reply": "message.auto_replied",
    "bounce": "message.bounced",
}
# Types that also go to notify_email: the first open, and the nudge.
EMAIL_TYPES = ("message.first_open", "message.reminder")
# The first attempt waits this long: labels may still change right after the
# commit (a honeypot or a burst relabels the clicks around it within ~0.1 s),
# and a notice about a hit that turned out to be a scanner is noise.
HOLD_SECONDS = 1.0

TxHook = Callable[[Any, str, bool, Sequence[Event], list[Transition]], None]


def outbox_items(batch: Sequence[Event], transitions: list[Transition]) -> list[tuple[Event, str]]:
    """(event, type) pairs a batch produces, in event order."""
    items: list[tuple[Event, str]] = []
    for e in batch:
        kind = e.kind  # a StrEnum: compares as its value, without the .value descriptor
        if kind == "open" and e.label in HUMAN_OPEN_LABELS:
            items.append((e, "message.open"))
        elif kind == "click" and e.label == "human":
            items.append((e, "message.click"))
        elif kind == "reply" and e.label in REPLY_TYPES:
            items.append((e, REPLY_TYPES[e.label]))
        elif kind == "reminder":
            items.append((e, "message.reminder"))
    for e, flag, on in transitions:
        if on and flag == "opened":
            items.append((e, "message.first_open"))
        elif on and flag == "clicked":
            items.append((e, "message.first_click"))
    return items


def make_tx_hook(notify_email: Callable[[], str]) -> TxHook:
    """The recorder hook; ``notify_email()`` says where first-open emails go ("" = off)."""

    def hook(
        cur: Any, mark: str, _pg: bool, batch: Sequence[Event], transitions: list[Transition]
    ) -> None:
        items = outbox_items(batch, transitions)
        if not items:
            return
        now = time.time()
        due = now + HOLD_SECONDS
        # Subscriptions are read in the batch's own transaction (never a
        # cache another node may have changed); with no webhook at all the
        # per-event fan-out is skipped (it cost ~5 us per human hit).
        if outbox_store.any_webhook(cur):
            outbox_store.fan_out(cur, mark, [(e.id, e.message_id, t) for e, t in items], now, due)
        email = notify_email()
        mails = [(e.id, e.message_id, t) for e, t in items if t in EMAIL_TYPES]
        if email and mails:
            outbox_store.queue_emails(cur, mark, email, mails, now, due)

    return hook
