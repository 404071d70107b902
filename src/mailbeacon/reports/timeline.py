"""Hourly counters -> timeline rows, local days and a weekday x hour heatmap.

The rollups count events per UTC hour (``hour`` dimension, key
``<unix hour>:<o|c>:<class>``). Every view here is derived from those rows,
so any time zone works without re-reading events: a UTC hour is put in the
local day and local hour in which it starts. For the few zones whose offset
is not whole hours (India +5:30, Nepal +5:45) that shifts a bucket by at most
45 minutes, which a daily chart or a heatmap cell cannot show anyway.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbeacon.timefmt import iso

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
FIELDS = ("human_opens", "machine_opens", "other_opens", "human_clicks", "other_clicks")
# A daily timeline is filled densely (days without hits are 0), capped so a
# campaign with a stray hit years later cannot make a 100k-row answer.
MAX_DAYS = 3660


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError with a message fit for an API answer."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name[:60]!r}: use an IANA name such as Europe/Berlin"
        ) from None


def _field(kind: str, cls: str) -> str:
    if kind == "o":
        return {"h": "human_opens", "m": "machine_opens"}.get(cls, "other_opens")
    return "human_clicks" if cls == "h" else "other_clicks"


def hourly(rows: dict[str, int]) -> dict[int, dict[str, int]]:
    """``hour`` counters -> {unix hour: {field: n}} (hours with no count left out)."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for key, n in rows.items():
        hour, kind, cls = key.split(":")
        if n:
            out[int(hour)][_field(kind, cls)] += n
    return dict(sorted(out.items()))


def hourly_rows(hours: dict[int, dict[str, int]]) -> list[dict[str, Any]]:
    return [{"at": iso(h * 3600.0), **v} for h, v in hours.items()]


def _local(hour: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC).astimezone(tz)


def daily_rows(hours: dict[int, dict[str, int]], tz: ZoneInfo) -> list[dict[str, Any]]:
    days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for h, v in hours.items():
        d = days[_local(h, tz).date()]
        for f in FIELDS:
            d[f] += v[f]
    if not days:
        return []
    first, last = min(days), max(days)
    if (last - first).days > MAX_DAYS:
        span = sorted(days)
    else:
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    zero = dict.fromkeys(FIELDS, 0)
    return [{"date": d.isoformat(), **days.get(d, zero)} for d in span]


def heatmap(hours: dict[int, dict[str, int]], tz: ZoneInfo) -> dict[str, Any]:
    """Human opens by local weekday (rows, Monday first) and local hour (columns)."""
    grid = [[0] * 24 for _ in WEEKDAYS]
    for h, v in hours.items():
        if v["human_opens"]:
            local = _local(h, tz)
            grid[local.weekday()][local.hour] += v["human_opens"]
    return {"tz": tz.key, "weekdays": WEEKDAYS, "human_opens": grid}
