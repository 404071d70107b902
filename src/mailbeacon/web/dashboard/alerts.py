"""Which hits a user is notified of in the browser: the first human open, the
first human click and/or a reply, for every message, only 1-to-1 messages (not
in a campaign), or chosen campaigns.

Stored per user as JSON in the ``settings`` table (``user.<id>.notify``), read
into each page as ``<html data-notify=...>`` for app.js, which decides per hit.
The default is quiet: 1-to-1 messages only, because a 20-person campaign
otherwise raises ten notifications in an afternoon.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine

from mailbeacon.store import keys

EVENTS = {
    "first_open": "the first time a person opens a message",
    "first_click": "the first time a person clicks a link in it",
    "reply": "a reply (not auto-replies or bounces)",
}
SCOPES = {
    "one_to_one": "1-to-1 messages only (not in a campaign)",
    "all": "every message",
    "campaigns": "these campaigns (and 1-to-1 messages):",
}
DEFAULT: dict[str, Any] = {"events": list(EVENTS), "scope": "one_to_one", "campaigns": []}


def setting_name(user_id: int) -> str:
    return f"user.{user_id}.notify"


def clean(events: list[str], scope: str, campaigns: list[str]) -> dict[str, Any]:
    """Preferences from a form: unknown values are dropped, not stored."""
    return {
        "events": [e for e in EVENTS if e in events],
        "scope": scope if scope in SCOPES else DEFAULT["scope"],
        "campaigns": sorted({int(c) for c in campaigns if c.isdigit()}),
    }


def load(engine: Engine, user_id: int) -> dict[str, Any]:
    raw = keys.get_setting(engine, setting_name(user_id))
    if raw is None:
        return dict(DEFAULT)
    try:
        got = json.loads(raw)
        return clean(
            [str(e) for e in got.get("events", [])],
            str(got.get("scope", "")),
            [str(c) for c in got.get("campaigns", [])],
        )
    except (ValueError, AttributeError, TypeError):
        return dict(DEFAULT)


def save(engine: Engine, user_id: int, prefs: dict[str, Any]) -> None:
    keys.set_setting(engine, setting_name(user_id), json.dumps(prefs, separators=(",", ":")))
