"""Notices a reverse proxy that serve was not told to trust.

Behind nginx or Caddy without ``--trust-proxy``, every request seems to come
from the proxy's own address: hits lose their client's network, and once
the sender uses the dashboard through the same proxy, every hit from that
address is labelled ``self``. A proxy gives itself away: it connects from a
private or loopback address and adds X-Forwarded-For. The first such request
is logged as a warning, and /healthz and the dashboard say so from then on.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from mailbeacon.hits.clientip import ClientIP
from mailbeacon.timefmt import iso

log = logging.getLogger("mailbeacon")


@dataclass(frozen=True)
class Sighting:
    peer: str
    first_seen: float

    @property
    def fix(self) -> str:
        return f"--trust-proxy {self.peer}/{32 if ':' not in self.peer else 128}"

    @property
    def message(self) -> str:
        return (
            f"requests from {self.peer} carry X-Forwarded-For, but {self.peer} is not a "
            f"trusted proxy: hits through it are recorded as coming from {self.peer}, and "
            f"count as your own (self) once you use the dashboard through it. If it is "
            f"your reverse proxy, restart serve with {self.fix}."
        )

    def public(self) -> dict[str, str]:
        return {
            "peer": self.peer,
            "first_seen": iso(self.first_seen) or "",
            "fix": self.fix,
            "message": self.message,
        }


class ProxyCheck:
    def __init__(self, client_ip: ClientIP, clock: Callable[[], float] = time.time) -> None:
        self.client_ip = client_ip
        self.clock = clock
        self.found: Sighting | None = None

    def look(self, scope: Scope) -> None:
        client = scope.get("client")
        peer = client[0] if client else ""
        if not _private(peer) or self.client_ip.is_trusted(peer):
            return
        for name, _value in scope["headers"]:
            if name == b"x-forwarded-for":
                self.found = Sighting(peer, self.clock())
                log.warning("untrusted reverse proxy: %s", self.found.message)
                return


@lru_cache(maxsize=4096)
def _private(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


class ProxyWatch:
    """ASGI wrapper: looks at requests until the first sighting, then only passes them on."""

    def __init__(self, app: ASGIApp, check: ProxyCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.check.found is None and scope["type"] == "http":
            self.check.look(scope)
        await self.app(scope, receive, send)
