"""Times on dashboard pages: "2 h ago" with the absolute time on hover, in the
signed-in user's time zone.

Every time is a ``<time datetime="<UTC ISO>" title="<absolute, user's zone>">``:
the server writes the relative words as of rendering and app.js keeps them
current, so a page left open does not say "just now" an hour later.

The zone is, in order: the user's saved setting (Settings → Time zone), the
browser's own zone (app.js sends it in the ``mb_tz`` cookie, read from
``Intl``), UTC. Stored in the ``settings`` table as ``user.<id>.tz``: one row
per user, no schema change.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from markupsafe import Markup, escape

from mailbeacon.reports.timeline import zone as parse_zone
from mailbeacon.store import keys
from mailbeacon.web.deps import get_node

BROWSER_COOKIE = "mb_tz"


def setting_name(user_id: int) -> str:
    return f"user.{user_id}.tz"


def valid(name: str | None) -> str | None:
    """The zone's canonical key, or None when ``name`` is not an IANA zone."""
    if not name or len(name) > 64:
        return None
    try:
        return parse_zone(name.strip()).key
    except ValueError:
        return None


def check(name: str) -> str:
    """The zone's key, or ValueError with a sentence for the user."""
    found = valid(name)
    if found is None:
        raise ValueError(
            f"“{name[:60]}” is not a time zone. Use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC."
        )
    return found


def saved(request: Request) -> str | None:
    sess = getattr(request.state, "mb_session", None)
    if sess is None:
        return None
    engine = get_node(request).engine
    return valid(keys.get_setting(engine, setting_name(sess.user_id)))


def save(request: Request, user_id: int, name: str) -> str:
    found = check(name)
    keys.set_setting(get_node(request).engine, setting_name(user_id), found)
    return found


def browser_zone(request: Request) -> str:
    return valid(request.cookies.get(BROWSER_COOKIE)) or "UTC"


def user_zone(request: Request) -> str:
    """The zone pages are shown in (see the module docstring)."""
    return saved(request) or browser_zone(request)


def _dt(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def absolute(dt: datetime, zone: str) -> str:
    return dt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def relative(at: float, now: float) -> str:
    """'just now', '5 min ago', '2 h ago', '3 days ago', 'in 10 min' (app.js mirrors this).

    Whole units rounded down, as clocks do ("2 h ago" until the third hour).
    """
    delta = now - at
    ahead = delta < 0
    s = abs(delta)
    if s < 45:
        return "in a moment" if ahead else "just now"
    if s < 3600:
        words = f"{max(1, int(s // 60))} min"
    elif s < 86400:
        words = f"{int(s // 3600)} h"
    else:
        days = int(s // 86400)
        words = f"{days} day{'s' if days != 1 else ''}"
    return f"in {words}" if ahead else f"{words} ago"


# Beyond a month "40 days ago" says less than the date itself.
RELATIVE_LIMIT = 30 * 86400


def time_html(value: Any, zone: str, now: float | None = None) -> Markup:
    """``<time>`` for a value (ISO string or unix seconds); '—' when there is none."""
    dt = _dt(value)
    if dt is None:
        return Markup("—") if value in (None, "") else Markup(escape(str(value)))
    now = time.time() if now is None else now
    at = dt.timestamp()
    full = absolute(dt, zone)
    shown = relative(at, now) if abs(now - at) < RELATIVE_LIMIT else full[:16]
    iso = dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, full, shown)
