"""/metrics: open to this machine by default, a token from anywhere else."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from mailbeacon.hits.clientip import ClientIP
from mailbeacon.web.opsaccess import MetricsAccess
from tests.helpers import start_server

LOCAL = ("127.0.0.0/8", "::1/128")


@pytest.mark.parametrize(
    ("peer", "forwarded", "auth", "token", "networks", "trusted", "want"),
    [
        ("127.0.0.1", None, "", "", LOCAL, (), None),
        ("::1", None, "", "", LOCAL, (), None),
        ("192.0.2.7", None, "", "", LOCAL, (), 403),  # no token set: only the networks
        ("192.0.2.7", None, "", "s3cret", LOCAL, (), 401),
        ("192.0.2.7", None, "Bearer nope", "s3cret", LOCAL, (), 401),
        ("192.0.2.7", None, "Bearer s3cret", "s3cret", LOCAL, (), None),
        ("127.0.0.1", None, "Bearer nope", "s3cret", LOCAL, (), 401),  # a wrong token is wrong
        ("127.0.0.1", None, "Bearer s3cret", "", LOCAL, (), None),  # no token configured
        # An untrusted proxy on loopback forwards for someone unknown: not local.
        ("127.0.0.1", "198.51.100.4", "", "", LOCAL, (), 403),
        # A trusted proxy: the client it names decides.
        ("127.0.0.1", "198.51.100.4", "", "", LOCAL, ("127.0.0.0/8",), 403),
        ("127.0.0.1", "10.0.0.5", "", "", ("10.0.0.0/8",), ("127.0.0.0/8",), None),
        ("127.0.0.1", None, "", "s3cret", (), (), 401),  # no networks: always a token
    ],
)
def test_who_may_read_the_metrics(
    peer: str,
    forwarded: str | None,
    auth: str,
    token: str,
    networks: tuple[str, ...],
    trusted: tuple[str, ...],
    want: int | None,
) -> None:
    access = MetricsAccess(ClientIP([ipaddress.ip_network(c) for c in trusted]), token, networks)
    refused = access.refusal(peer, forwarded, auth)
    assert (refused[0] if refused else None) == want


@pytest.mark.process
def test_metrics_over_http(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(
        sqlite_url,
        tmp_path,
        env={"MAILBEACON_METRICS_TOKEN": "s3cret", "MAILBEACON_METRICS_NETWORKS": "10.0.0.0/8"},
    )
    try:
        url = f"{srv.url}/metrics"
        refused = httpx.get(url)  # from 127.0.0.1, which is not in metrics_networks here
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "mailbeacon_hits" in ok.text
        assert httpx.get(url, headers={"Authorization": f"Bearer {srv.key}"}).status_code == 401
    finally:
        srv.stop()


@pytest.mark.process
def test_metrics_default_is_this_machine_only(sqlite_url: str, tmp_path: Path) -> None:
    srv = start_server(sqlite_url, tmp_path)
    try:
        assert httpx.get(f"{srv.url}/metrics").status_code == 200
        proxied = httpx.get(f"{srv.url}/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
        assert proxied.status_code == 403 and "metrics_token" in proxied.json()["message"]
    finally:
        srv.stop()
