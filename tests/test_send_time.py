"""Send-time advice (reports/sendtime.py): the best weekday x hour window of
first human opens, its words, and the threshold below which there is none."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.reports import sendtime
from mailbeacon.reports.sendtime import Window

DAYS = {d: i for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])}


def grid(*cells: tuple[str, int, int]) -> list[list[int]]:
    """A weekday x hour grid from (weekday, hour, first opens)."""
    g = [[0] * 24 for _ in range(7)]
    for day, hour, n in cells:
        g[DAYS[day]][hour] += n
    return g


@pytest.mark.parametrize(
    ("cells", "window"),
    [
        ([], None),
        # One cell: the window shrinks to it (the smallest holding as many).
        ([("Wed", 10, 5)], Window(2, 1, 10, 1, 5)),
        # Tue-Thu 9-11 holds 7; a stray open elsewhere stays outside.
        (
            [("Tue", 9, 2), ("Wed", 10, 3), ("Thu", 11, 2), ("Sat", 20, 1)],
            Window(1, 3, 9, 3, 7),
        ),
        # At most 3 x 3: a wider spread keeps the richest 3 x 3 part.
        (
            [("Mon", 8, 1), ("Tue", 9, 2), ("Wed", 10, 3), ("Thu", 11, 2), ("Fri", 12, 1)],
            Window(1, 3, 9, 3, 7),
        ),
        # Ties: the earliest in the week, then the earliest hour.
        ([("Mon", 9, 1), ("Fri", 9, 1)], Window(0, 1, 9, 1, 1)),
        ([("Tue", 15, 2), ("Tue", 9, 2)], Window(1, 1, 9, 1, 2)),
        # No wrap from Sunday to Monday: Sun 9 and Mon 9 are a week apart.
        ([("Sun", 9, 3), ("Mon", 9, 2)], Window(6, 1, 9, 1, 3)),
        # No wrap past midnight: 23 h and 0 h of one weekday are not neighbours.
        ([("Fri", 23, 3), ("Fri", 0, 2)], Window(4, 1, 23, 1, 3)),
        # The last columns and rows are reachable.
        ([("Sat", 22, 1), ("Sun", 23, 1), ("Sun", 22, 1)], Window(5, 2, 22, 2, 3)),
    ],
)
def test_best_window(cells: list[tuple[str, int, int]], window: Window | None) -> None:
    assert sendtime.best_window(grid(*cells)) == window


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (Window(1, 3, 9, 2, 7), "Tue–Thu 9–11"),
        (Window(1, 3, 9, 3, 7), "Tue–Thu 9–12"),
        (Window(0, 1, 0, 1, 1), "Mon 0–1"),
        (Window(5, 2, 21, 3, 1), "Sat–Sun 21–24"),
    ],
)
def test_window_words(window: Window, words: str) -> None:
    assert sendtime.window_words(window) == words


def test_advice_names_the_window_share_and_sample() -> None:
    g = grid(("Tue", 9, 5), ("Wed", 10, 5), ("Thu", 10, 4), ("Sat", 20, 9))
    assert sendtime.advice(g, "Europe/Paris") == {
        "text": "Most first opens: Tue–Thu 9–11 (Europe/Paris), 14 of 23 people (61%).",
        "weekdays": ["Tue", "Wed", "Thu"],
        "hours": [9, 10],
        "tz": "Europe/Paris",
        "sample": 23,
        "opens": 14,
        "share": 0.6087,
        "min_sample": 10,
    }


@pytest.mark.parametrize("n", [0, 4, 9])
def test_too_few_first_opens_no_advice(n: int) -> None:
    got = sendtime.advice(grid(("Tue", 9, n)), "UTC")
    assert got["text"] == (
        f"Too few human opens to advise a send time ({n} so far; advice starts at 10)."
    )
    assert (got["weekdays"], got["hours"], got["opens"], got["share"]) == (None,) * 4
    assert got["sample"] == n


def test_ten_is_enough() -> None:
    assert sendtime.advice(grid(("Tue", 9, 10)), "UTC")["text"] == (
        "Most first opens: Tue 9–10 (UTC), 10 of 10 people (100%)."
    )


@pytest.mark.parametrize(
    ("tz", "weekday", "hour"),
    [
        ("UTC", 0, 23),  # 2024-01-01 23:00 UTC is a Monday
        ("Europe/Paris", 1, 0),  # the next day there
        ("America/New_York", 0, 18),
    ],
)
def test_first_opens_go_into_the_zones_grid(tz: str, weekday: int, hour: int) -> None:
    h = int(datetime.fromisoformat("2024-01-01T23:00:00+00:00").timestamp() // 3600)
    g = sendtime.local_grid({h: 3}, ZoneInfo(tz))
    assert g[weekday][hour] == 3 and sum(map(sum, g)) == 3
