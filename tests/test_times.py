"""Times that come in from outside (API sent_at, CLI --sent-at): anything
that is not a time between 1970 and 9999 is refused with a 422 or a one-line
error, never a 500 or a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailbeacon.timefmt import iso, parse
from tests.helpers import cli

BAD = [
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1e400",
    "1e20",
    "-1e20",
    "10000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "yesterday",
]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("2024-06-01T09:30:00Z", 1717234200.0),
        ("2024-06-01T09:30:00", 1717234200.0),  # naive is UTC
        ("1717234200", 1717234200.0),
        (1717234200, 1717234200.0),
        ("9999-12-31T23:59:59Z", 253402300799.0),
        (None, None),
        ("", None),
    ],
)
def test_parse_accepts_times(value: Any, want: float | None) -> None:
    assert parse(value) == want
    if want is not None:
        assert iso(want) is not None  # whatever is accepted can be written back


@pytest.mark.parametrize("value", [*BAD, float("nan"), float("inf"), 1e20, -1.0, True])
def test_parse_refuses_what_is_no_time(value: Any) -> None:
    with pytest.raises(ValueError):
        parse(value)


# JSON as a careless or hostile client sends it: Python's and most browsers'
# JSON writers emit bare NaN and Infinity, which the server's parser accepts.
RAW_BODIES = [
    '{"recipient": "a@example.com", "sent_at": NaN}',
    '{"recipient": "a@example.com", "sent_at": Infinity}',
    '{"recipient": "a@example.com", "sent_at": -Infinity}',
    '{"recipient": "a@example.com", "sent_at": 1e400}',
    '{"recipient": "a@example.com", "sent_at": 1e20}',
    '{"recipient": "a@example.com", "sent_at": -1e20}',
    *(json.dumps({"recipient": "a@example.com", "sent_at": v}) for v in BAD),
]


@pytest.mark.parametrize("raw", RAW_BODIES)
def test_api_refuses_sent_at_out_of_range_with_422(api: TestClient, raw: str) -> None:
    for path in ("/api/v1/messages", "/api/v1/instrument"):
        body = raw if path.endswith("messages") else raw[:-1] + ', "html": "<p>hi</p>"}'
        r = api.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["error"] == "invalid" and "sent_at" in r.json()["message"]
    # Nothing half-made was stored.
    with api.app_state_engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 0


def test_api_keeps_good_sent_at(api: TestClient) -> None:
    r = api.post("/api/v1/messages", json={"recipient": "a@example.com", "sent_at": "9999-12-31"})
    assert r.status_code == 201 and r.json()["sent_at"] == "9999-12-31T00:00:00.000Z"


@pytest.mark.parametrize("value", ["nan", "1e20", "10000-01-01", "soon"])
def test_cli_sent_at_out_of_range_is_one_line(sqlite_url: str, value: str) -> None:
    proc = cli(
        "message", "new", "--to", "a@example.com", "--sent-at", value, db=sqlite_url, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--sent-at" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
