"""Time as the API writes and reads it: ISO 8601 in UTC, or unix seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# What ``iso`` can write back: 1970-01-01 to 9999-12-31T23:59:59Z. A time
# outside it (1e20, -1e20, year 10000) would be stored and then fail every
# read that formats it, so it is refused where it comes in.
EARLIEST = 0.0
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(value: str | float | int | None) -> float | None:
    """Unix seconds from an ISO 8601 string (naive means UTC) or a number.

    ValueError for anything else: text that is no time, NaN, infinities, and
    times before 1970 or after 9999.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # a JSON true is an int to Python, not a time
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        return _in_range(float(value))
    text = value.strip()
    try:
        number = float(text)  # "1718000000", also "nan" and "1e400"
    except ValueError:
        pass
    else:
        return _in_range(number)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not ISO 8601 or unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _in_range(dt.timestamp())


def _in_range(ts: float) -> float:
    if math.isnan(ts) or not EARLIEST <= ts <= LATEST:
        raise ValueError(f"{ts!r} is not a time between 1970 and 9999")
    return ts
