"""Property: no request to the tracking paths can stop recording.

Arbitrary user agents, classifier headers and X-Forwarded-For values (from a
trusted proxy, with full addresses stored, so every byte reaches a column)
against a real ``serve`` on each store, sent as raw bytes so nothing on the
client side cleans them. After every example the node is healthy, every hit
answered ``X-Mailbeacon-Recorded: yes`` is an event, and nothing needed a
dead letter: values fit their columns by construction.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailbeacon.model import CLASSIFIER_HEADERS
from tests.helpers import Server, rows, start_server

pytestmark = pytest.mark.process  # fuzzes a real `serve` over raw sockets

# Every byte a header value can carry on the wire (CR and LF end it).
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"),
    max_size=700,
)
_CFNETWORK = _VALUE.map(lambda app: f"{app}/2 CFNetwork/808 Darwin/16")
_HOP = st.one_of(
    st.ip_addresses().map(str),
    _VALUE.map(lambda zone: f"fe80::1%{zone}"),  # parses as an address: the zone is free
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    _VALUE,
)
_REQUEST = st.fixed_dictionaries(
    {
        "click": st.booleans(),
        "method": st.sampled_from(["GET", "HEAD"]),
        "ua": st.one_of(_VALUE, _CFNETWORK),
        "xff": st.lists(_HOP, max_size=4).map(", ".join),
        "headers": st.dictionaries(st.sampled_from(CLASSIFIER_HEADERS), _VALUE, max_size=4),
    }
)


def _send(srv: Server, path: str, req: dict[str, Any]) -> tuple[int, str | None]:
    """One raw HTTP/1.1 request; (status, X-Mailbeacon-Recorded or None)."""
    lines = [f"{req['method']} {path} HTTP/1.1", "Host: 127.0.0.1", f"User-Agent: {req['ua']}"]
    if req["xff"]:
        lines.append(f"X-Forwarded-For: {req['xff']}")
    lines += [f"{name}: {value}" for name, value in req["headers"].items()]
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    recorded = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "x-mailbeacon-recorded":
            recorded = value.strip()
    return status, recorded


def _healthy(srv: Server) -> bool:
    with srv.client() as c:
        return c.get("/healthz").status_code == 200


def test_no_request_stops_recording(db_url: str, tmp_path: Path) -> None:
    srv = start_server(
        db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8", "--store-ip", "full"]
    )

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,  # the same examples on every run and every machine
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(_REQUEST, min_size=1, max_size=6))
    @example(  # the two requests from issue 9 that stopped recording on PostgreSQL
        [
            {
                "click": False,
                "method": "GET",
                "ua": "x" * 100 + "/2 CFNetwork/808 Darwin/16",
                "xff": "",
                "headers": {},
            },
            {
                "click": True,
                "method": "GET",
                "ua": "Mail",
                "xff": "fe80::1%" + "z" * 200,
                "headers": {"via": "\x00" * 10},
            },
        ]
    )
    def hits(requests: list[dict[str, Any]]) -> None:
        msg = srv.message(links=["https://example.com/a"])
        yes = 0
        for req in requests:
            url = msg["links"][0]["tracked_url"] if req["click"] else msg["open_url"]
            status, recorded = _send(srv, url.removeprefix(srv.url), req)
            if status >= 400:
                continue  # refused by the HTTP parser or our bounds, before any recording
            assert recorded == "yes", (status, recorded)
            yes += 1
        assert _healthy(srv), srv.output()[-3000:]
        stored = rows(srv.db, "SELECT COUNT(*) FROM events WHERE message_id = ?", (msg["id"],))
        assert stored == [(yes,)]

    try:
        hits()
        assert rows(srv.db, "SELECT COUNT(*) FROM dead_letters") == [(0,)]
    finally:
        srv.stop()
