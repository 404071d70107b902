"""Facts about an event's source address that several rules share."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address

from mailbeacon.model import Event

__all__ = ["net_key", "same_source"]


@lru_cache(maxsize=65536)
def _v6_key(ip: str) -> str:
    try:
        return ip_address(ip).exploded[:14]  # the /48: three 4-digit groups
    except ValueError:
        return ip


def net_key(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) of an address or of a stored "net/len".

    /24 and /48 are what the store keeps (docs/design.md, privacy), so the key is
    the same whether the event still carries its full address or not.
    """
    ip = ip.partition("/")[0]
    if ":" in ip:
        if ip.startswith("::ffff:") and "." in ip:
            return ip[7:].rpartition(".")[0]
        return _v6_key(ip)
    return ip.rpartition(".")[0]


def same_source(a: Event, b: Event) -> bool:
    """Same keyed IP hash, or the same /24 (/48): Marketo's proximity rule and
    SendGrid's scanner symptom compare sources, and scanners spread a burst
    over neighbouring addresses (40.94.89.19/.21/.23, gophish #2646)."""
    if a.ip_hash and a.ip_hash == b.ip_hash:
        return True
    ka = net_key(a.ip or a.ip_stored)
    return bool(ka) and ka == net_key(b.ip or b.ip_stored)
