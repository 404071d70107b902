"""Send-time advice from a campaign's own first human opens.

Each message counts once, at its first human open
(``message_stats.first_human_open_at``, kept by the rollups): a person who
opens the mail five times says when they read mail once. One query groups
those times by UTC hour over the campaign's message_stats rows, so the cost
is one pass over the campaign's opened messages, never over its events:
measured 30-55 ms on SQLite for 50,000 opened messages (the rest of the
grid and window: 2 ms). That is the whole report budget at that size; an
additive ``first_open`` hour counter in the rollups would make it a
counters read like the heatmap (not done yet: relabelling must move a
message's first open between hours). The hours
go into the shown zone's weekday x hour grid exactly like the heatmap
(``timeline.heatmap``; zones off whole hours shift by up to 45 minutes).

The advice names the window of 1-3 consecutive weekdays by 1-3 consecutive
hours that holds the most first opens; among windows holding as many, the
smallest (the most precise advice), then the earliest in the week. Windows
do not wrap: Sunday -> Monday is the end of one week and the start of the
next, and a window like "23-2" would put each day's small hours with the
evening before, which reads as another day. Below MIN_SAMPLE first opens
there is no advice, only how many there are.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, Integer, cast, func, select

from mailbeacon.reports import timeline
from mailbeacon.store.schema import message_stats

# Ten people is where a 3 x 3 window (9 of 168 cells) holding most of them
# stops being what chance alone gives often (with 4 first opens, any window
# around two of them "holds half").
MIN_SAMPLE = 10
MAX_DAYS = 3
MAX_HOURS = 3


class Window(NamedTuple):
    day: int  # 0 = Monday
    days: int
    hour: int
    hours: int
    opens: int


def first_open_hours(conn: Connection, campaign_id: int) -> dict[int, int]:
    """{unix hour (UTC): messages whose first human open fell in it}."""
    col = message_stats.c.first_human_open_at
    # An integer hour number: floor() on PostgreSQL (a cast there rounds);
    # SQLite's CAST truncates, the same for positive times, and needs no
    # math-functions build.
    sqlite = conn.dialect.name == "sqlite"
    hour = cast(col / 3600, Integer) if sqlite else cast(func.floor(col / 3600), BigInteger)
    rows = conn.execute(
        select(hour, func.count())
        .where(
            message_stats.c.campaign_id == campaign_id,
            # implied by a first human open; lets the campaign/opened_at index
            # skip the messages nobody opened
            message_stats.c.opened_at.is_not(None),
            col.is_not(None),
        )
        .group_by(hour)
    ).all()
    return {int(h): int(n) for h, n in rows}


def local_grid(first_opens: dict[int, int], tz: ZoneInfo) -> list[list[int]]:
    """Weekday (Monday first) x local hour counts of first opens."""
    hours = {h: {"human_opens": n} for h, n in first_opens.items()}
    grid: list[list[int]] = timeline.heatmap(hours, tz)["human_opens"]
    return grid


def best_window(grid: list[list[int]]) -> Window | None:
    """The window holding the most; None when the grid is empty."""
    best: Window | None = None
    for days in range(1, MAX_DAYS + 1):
        for day in range(len(grid) - days + 1):
            for hours in range(1, MAX_HOURS + 1):
                for hour in range(24 - hours + 1):
                    n = sum(sum(grid[d][hour : hour + hours]) for d in range(day, day + days))
                    w = Window(day, days, hour, hours, n)
                    if best is None or _better(w, best):
                        best = w
    return best if best is not None and best.opens > 0 else None


def _better(a: Window, b: Window) -> bool:
    if a.opens != b.opens:
        return a.opens > b.opens
    if a.days * a.hours != b.days * b.hours:
        return a.days * a.hours < b.days * b.hours
    return (a.day, a.hour, a.days) < (b.day, b.hour, b.days)


def window_words(w: Window) -> str:
    """ "Tue–Thu 9–12": weekdays, then the hours as times of day (9–12 is
    9:00 to 12:00, three hour columns)."""
    first, last = timeline.WEEKDAYS[w.day], timeline.WEEKDAYS[w.day + w.days - 1]
    days = first if w.days == 1 else f"{first}–{last}"
    return f"{days} {w.hour}–{w.hour + w.hours}"


def advice(grid: list[list[int]], tz: str) -> dict[str, Any]:
    """The advice as the API gives it: text, the window (or nulls), sample, share."""
    sample = sum(map(sum, grid))
    w = best_window(grid) if sample >= MIN_SAMPLE else None
    if w is None:
        return {
            "text": f"Too few human opens to advise a send time ({sample} so far; "
            f"advice starts at {MIN_SAMPLE}).",
            "weekdays": None,
            "hours": None,
            "tz": tz,
            "sample": sample,
            "opens": None,
            "share": None,
            "min_sample": MIN_SAMPLE,
        }
    share = w.opens / sample
    return {
        "text": f"Most first opens: {window_words(w)} ({tz}), {w.opens} of {sample} "
        f"people ({round(100 * share)}%).",
        "weekdays": timeline.WEEKDAYS[w.day : w.day + w.days],
        "hours": list(range(w.hour, w.hour + w.hours)),
        "tz": tz,
        "sample": sample,
        "opens": w.opens,
        "share": round(share, 4),
        "min_sample": MIN_SAMPLE,
    }
