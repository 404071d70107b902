"""Times on dashboard pages: relative words, absolute on hover, the user's zone."""

from __future__ import annotations

import pytest

from mailbeacon.web.dashboard import times

NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


@pytest.mark.parametrize(
    ("ago", "words"),
    [
        (0, "just now"),
        (44, "just now"),
        (50, "1 min ago"),
        (150, "2 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (2 * 3600 + 100, "2 h ago"),
        (86400, "1 day ago"),
        (2 * 86400 - 1, "1 day ago"),
        (3 * 86400, "3 days ago"),
        (-600, "in 10 min"),
        (-10, "in a moment"),
    ],
)
def test_relative(ago: float, words: str) -> None:
    assert times.relative(NOW - ago, NOW) == words


@pytest.mark.parametrize(
    ("value", "zone", "html"),
    [
        (
            NOW - 7200,
            "Europe/Berlin",
            '<time datetime="2026-05-28T18:26:40Z" title="2026-05-28 20:26:40 CEST">2 h ago</time>',
        ),
        (
            "2026-05-28T18:26:39.500Z",
            "America/New_York",
            '<time datetime="2026-05-28T18:26:39Z" title="2026-05-28 14:26:39 EDT">2 h ago</time>',
        ),
        # Older than 30 days: the date itself, in the zone.
        (
            NOW - 40 * 86400,
            "Asia/Tokyo",
            '<time datetime="2026-04-18T20:26:40Z" title="2026-04-19 05:26:40 JST">'
            "2026-04-19 05:26</time>",
        ),
        (None, "UTC", "—"),
        ("", "UTC", "—"),
        ("not a time", "UTC", "not a time"),
    ],
)
def test_time_html(value: object, zone: str, html: str) -> None:
    assert str(times.time_html(value, zone, now=NOW)) == html


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("UTC", "UTC"),
        (" Asia/Tokyo ", "Asia/Tokyo"),
        ("Mars/Base", None),
        ("../../etc/passwd", None),
        ("", None),
        (None, None),
        ("x" * 65, None),
    ],
)
def test_valid_zone(name: str | None, found: str | None) -> None:
    assert times.valid(name) == found


def test_check_says_what_to_type() -> None:
    with pytest.raises(ValueError, match="“Mars/Base” is not a time zone. Use an IANA name"):
        times.check("Mars/Base")
