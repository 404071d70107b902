"""The client address of a request, and how much of it is stored."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientIP:
    """Resolves the client address; honours X-Forwarded-For only from trusted peers.

    With trusted proxies, the client is the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (the left part of the
    header is whatever the client chose to send, so it is never believed).
    """

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per server; peers repeat
    def is_trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        if not self.trusted or not forwarded_for or not self.is_trusted(peer):
            return peer
        for part in reversed(forwarded_for.split(",")):
            addr = part.strip()
            if addr.startswith("[") and "]" in addr:  # "[2001:db8::1]:443"
                addr = addr[1 : addr.index("]")]
            elif addr.count(":") == 1:  # "203.0.113.7:5123"
                addr = addr.split(":", 1)[0]
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                return peer  # a malformed hop: trust nothing left of it
            if not self.is_trusted(addr):
                return addr
        return peer


class IPStorage:
    """Turns an address into what is kept: a truncated network (or the full
    address when opted in) and a keyed hash that recognises a repeat visitor
    without storing who it is."""

    def __init__(self, key: bytes, full: bool = False) -> None:
        self.key = key
        self.full = full

    @lru_cache(maxsize=65536)  # noqa: B019 - bounded; a few MB at most
    def stored(self, addr: str) -> tuple[str, str]:
        digest = hmac.new(self.key, addr.encode(), hashlib.sha256).hexdigest()[:32]
        if self.full:
            return addr, digest
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return "", digest
        # /24 and /48: the granularity of a street block or an ISP site,
        # enough for network classification, not enough to name a household.
        prefix = 24 if ip.version == 4 else 48
        return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False)), digest
