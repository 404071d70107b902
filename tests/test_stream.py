"""``GET /api/v1/stream``: server-sent events of new events, resumable by id."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.helpers import Server

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"


def read_events(
    srv: Server,
    n: int,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    started: threading.Event | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """The first ``n`` `hit` events of a stream (with their ids); ``started``
    is set once the stream has begun (its first frame, ``retry:``, came after
    the server fixed where it starts)."""
    out: list[tuple[int, dict[str, Any]]] = []
    h = {"Authorization": f"Bearer {srv.key}", **(headers or {})}
    with httpx.stream("GET", srv.url + "/api/v1/stream", headers=h, params=params, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        eid = None
        for line in r.iter_lines():
            if line.startswith("retry: ") and started is not None:
                started.set()
            elif line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("data: "):
                assert eid is not None
                out.append((eid, json.loads(line[6:])))
                if len(out) >= n:
                    return out
    return out


def test_stream_needs_a_key(server: Server) -> None:
    assert httpx.get(server.url + "/api/v1/stream").status_code == 401


def test_new_events_arrive_live_and_resume_from_last_event_id(server: Server) -> None:
    msg = server.message(sent_at=time.time() - 600)
    got: list[tuple[int, dict[str, Any]]] = []
    started = threading.Event()
    reader = threading.Thread(target=lambda: got.extend(read_events(server, 2, started=started)))
    reader.start()
    assert started.wait(20), "the stream did not start"  # it starts at "now": only later events
    for _ in range(2):
        httpx.get(msg["open_url"], headers={"User-Agent": THUNDERBIRD})
    reader.join(20)
    assert [e["message_id"] for _, e in got] == [msg["id"], msg["id"]]
    first_id, first = got[0]
    assert first["id"] == first_id and first["kind"] == "open" and first["label"]
    assert "reasons" in first and "ip" not in first
    # Reconnecting with Last-Event-ID replays what came after it.
    again = read_events(server, 1, headers={"Last-Event-ID": str(first_id)})
    assert again[0][0] == got[1][0]
    assert read_events(server, 2, params={"after": 0})[0][0] == first_id
