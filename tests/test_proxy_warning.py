"""An untrusted reverse proxy in front of serve is noticed and named: in the
start banner, the log, /healthz and on every dashboard page."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from mailbeacon.hits.clientip import ClientIP
from mailbeacon.web.proxycheck import ProxyCheck
from tests.helpers import start_server


@pytest.mark.process
def test_an_untrusted_proxy_is_named_in_the_log_healthz_and_dashboard(
    sqlite_url: str, tmp_path: Path
) -> None:
    srv = start_server(sqlite_url, tmp_path, extra_args=["--base-url", "https://t.example.com"])
    try:
        assert "without --trust-proxy" in srv.output()  # the banner's guess
        assert httpx.get(f"{srv.url}/healthz").json()["untrusted_proxy"] is None
        msg = srv.message()
        pixel = msg["open_url"].replace("https://t.example.com", srv.url)
        # What nginx in front would send: its own loopback peer plus the client.
        httpx.get(pixel, headers={"X-Forwarded-For": "203.0.113.9"})
        seen = httpx.get(f"{srv.url}/healthz").json()["untrusted_proxy"]
        assert seen["peer"] == "127.0.0.1" and seen["fix"] == "--trust-proxy 127.0.0.1/32"
        assert "self" in seen["message"]
        assert "untrusted reverse proxy" in srv.output()
        page = httpx.get(f"{srv.url}/login").text
        assert "Untrusted reverse proxy" in page and "--trust-proxy 127.0.0.1/32" in page
    finally:
        srv.stop()


@pytest.mark.process
def test_a_trusted_proxy_is_not_a_warning(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(
        sqlite_url,
        tmp_path,
        extra_args=["--base-url", "https://t.example.com", "--trust-proxy", "127.0.0.0/8"],
    )
    try:
        assert "without --trust-proxy" not in srv.output()
        msg = srv.message()
        pixel = msg["open_url"].replace("https://t.example.com", srv.url)
        httpx.get(pixel, headers={"X-Forwarded-For": "203.0.113.9"})
        httpx.get(f"{srv.url}/login", headers={"X-Forwarded-For": "203.0.113.9"})
        assert httpx.get(f"{srv.url}/healthz").json()["untrusted_proxy"] is None
        assert "Untrusted reverse proxy" not in httpx.get(f"{srv.url}/login").text
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "fix"),
    [
        ("127.0.0.1", True, [], "--trust-proxy 127.0.0.1/32"),
        ("10.1.2.3", True, [], "--trust-proxy 10.1.2.3/32"),
        ("::1", True, [], "--trust-proxy ::1/128"),
        ("fd00::7", True, [], "--trust-proxy fd00::7/128"),
        ("127.0.0.1", False, [], None),  # a local client, not a proxy
        ("8.8.8.8", True, [], None),  # a public client that sends the header itself
        ("10.1.2.3", True, ["10.0.0.0/8"], None),  # trusted: as configured
        ("10.1.2.3", True, ["127.0.0.0/8"], "--trust-proxy 10.1.2.3/32"),  # the wrong CIDR
    ],
)
def test_what_counts_as_an_untrusted_proxy(
    peer: str, forwarded: bool, trusted: list[str], fix: str | None
) -> None:
    check = ProxyCheck(ClientIP([ipaddress.ip_network(c) for c in trusted]), clock=lambda: 0.0)
    headers = [(b"host", b"t")] + ([(b"x-forwarded-for", b"198.51.100.4")] if forwarded else [])
    check.look({"type": "http", "client": (peer, 5000), "headers": headers})
    assert (check.found.fix if check.found else None) == fix
