"""Who may read /metrics.

The metrics say how busy the server is, how many hits were rejected and
whether the store is up: harmless to the operator, useful to an attacker
timing one. By default they are open to the machine itself (a local
Prometheus or node exporter) and need ``Authorization: Bearer
<metrics_token>`` from anywhere else; with no token set, anywhere else is
refused.

"From the machine itself" means the client as resolved through trusted
proxies; a request from a loopback peer that carries X-Forwarded-For while
that peer is not trusted came through an unconfigured proxy, from who knows
where, and is not local.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from mailbeacon.hits.clientip import ClientIP, Network


class MetricsAccess:
    def __init__(self, client_ip: ClientIP, token: str, networks: Sequence[str]) -> None:
        self.client_ip = client_ip
        self.token = token
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def refusal(
        self, peer: str, forwarded_for: str | None, authorization: str
    ) -> tuple[int, str, str] | None:
        """None when the request may read the metrics, else (status, code, message)."""
        scheme, _, given = authorization.partition(" ")
        if self.token and scheme.lower() == "bearer":
            if hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return None
            return 401, "unauthorized", "this metrics token is wrong"
        if self._local(peer, forwarded_for):
            return None
        if self.token:
            return 401, "unauthorized", "send 'Authorization: Bearer <metrics_token>'"
        return (
            403,
            "forbidden",
            "metrics are only served to metrics_networks; set metrics_token to read them "
            "from elsewhere",
        )

    def _local(self, peer: str, forwarded_for: str | None) -> bool:
        if forwarded_for and not self.client_ip.is_trusted(peer):
            return False  # proxied by someone serve does not trust: origin unknown
        try:
            ip = ipaddress.ip_address(self.client_ip.resolve(peer, forwarded_for))
        except ValueError:
            return False
        return any(ip in net for net in self.networks)
