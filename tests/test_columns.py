"""Every value derived from a request fits its column, by construction."""

from __future__ import annotations

import pytest

from mailbeacon.model import Event, Kind
from mailbeacon.store import events as event_store
from mailbeacon.store.schema import events


@pytest.mark.parametrize(
    ("text", "limit", "want"),
    [
        ("Thunderbird", 64, "Thunderbird"),
        ("x" * 100, 64, "x" * 64),
        ("a\x00b\x00", None, "ab"),  # PostgreSQL refuses NUL in text
        ("\x00" * 80 + "y", 64, "y"),  # stripped before cutting, so nothing is lost to NULs
        ("caf\udce9", None, "caf?"),  # a lone surrogate cannot be encoded as UTF-8
        ("Gmail\u00e9\u4e2d", 6, "Gmail\u00e9"),  # sizes count characters, not bytes
        ("", 2, ""),
    ],
)
def test_clean(text: str, limit: int | None, want: str) -> None:
    assert event_store.clean(text, limit) == want


def test_sizes_come_from_the_schema() -> None:
    assert event_store.SIZES["client"] == events.c.client.type.length == 64
    assert event_store.SIZES["ip"] == events.c.ip.type.length
    assert event_store.SIZES["user_agent"] == events.c.user_agent.type.length


def test_fit_bounds_every_sized_column_of_a_hostile_event() -> None:
    huge = "\udcff\x00" + "z" * 5000
    e = Event(
        message_id=1,
        kind=Kind.CLICK,
        at=0.0,
        method=huge,
        ip="fe80::1%" + huge,
        user_agent=huge,
        headers={"accept": huge},
        url="https://example.com/" + huge,
        ip_stored=huge,
        ip_hash=huge,
        token_flags=("mutated", huge),
        label=huge,
        client=huge,
        os=huge,
        device=huge,
        country=huge,
    )
    row = dict(zip(event_store._COLUMNS, event_store.row(event_store.fit(e)), strict=True))
    for name, size in event_store.SIZES.items():
        value = row[name]
        assert isinstance(value, str) and len(value) <= size, name
    for value in row.values():
        if isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")  # no lone surrogate anywhere, JSON included
    assert len(e.ip) <= event_store.SIZES["ip"]  # the remembered address too


def test_fit_leaves_ordinary_values_alone() -> None:
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Thunderbird/115.6.0"
    e = Event(
        message_id=1,
        kind=Kind.OPEN,
        at=0.0,
        method="GET",
        ip="2001:db8::1",
        user_agent=ua,
        ip_stored="2001:db8::/48",
        client="Thunderbird",
    )
    event_store.fit(e)
    assert (e.user_agent, e.ip, e.client, e.os) == (ua, "2001:db8::1", "Thunderbird", None)
    assert e.user_agent is ua  # unchanged values are not copied
