"""Send-time advice from a campaign's own first human opens.

Each message counts once, at its first human open
(``message_stats.first_human_open_at``): a person who opens the mail five
times says when they read mail once. The rollups keep that as an additive
``first_open`` counter per UTC hour (store/rollups.py, migration 0013), so
the advice costs no query of its own: the campaign report has already read
the campaign's counters. The hours go into the shown zone's weekday x hour
grid exactly like the heatmap (``timeline.heatmap``; zones off whole hours
shift by up to 45 minutes).

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

from mailbeacon.reports import timeline

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


def first_open_hours(rows: dict[str, int]) -> dict[int, int]:
    """``first_open`` counters -> {unix hour (UTC): messages first opened in it}."""
    return {int(h): n for h, n in rows.items() if n > 0}


def local_grid(first_opens: dict[int, int], tz: ZoneInfo) -> list[list[int]]:
    """Weekday (Monday first) x local hour counts of first opens."""
    hours = {h: {"human_opens": n} for h, n in first_opens.items()}
    grid: list[list[int]] = timeline.heatmap(hours, tz)["human_opens"]
    return grid


def best_window(grid: list[list[int]]) -> Window | None:
    """The window holding the most; among those holding as many, the smallest,
    then the earliest (day, then hour); None when the grid is empty."""
    best: tuple[int, int, int, int, int] | None = None  # the order, as one key
    for hours in range(1, MAX_HOURS + 1):
        for hour in range(24 - hours + 1):
            # Each day's opens in these hours, once: the day spans add them up.
            per_day = [sum(row[hour : hour + hours]) for row in grid]
            for days in range(1, MAX_DAYS + 1):
                for day in range(len(grid) - days + 1):
                    n = sum(per_day[day : day + days])
                    key = (n, -days * hours, -day, -hour, -days)
                    if best is None or key > best:
                        best = key
    if best is None or best[0] <= 0:
        return None
    n, neg_area, neg_day, neg_hour, neg_days = best
    return Window(-neg_day, -neg_days, -neg_hour, neg_area // neg_days, n)


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
