"""Where a webhook may connect: public addresses only, checked where it counts.

A webhook URL is typed by whoever holds an API key or a dashboard login, and
the server then POSTs to it from inside the operator's network: pointed at
127.0.0.1, 10.x or 169.254.169.254 it would reach the database, an admin
port or the cloud's metadata service (server-side request forgery). So:

- the host is resolved the way the connection will resolve it
  (``getaddrinfo``, which also reads ``2130706433``, ``0x7f.1``, ``0177.0.0.1``
  and ``127.1`` as 127.0.0.1, and ``localhost`` from /etc/hosts), and *every*
  address it gives must be public: not loopback, private, link-local
  (metadata), shared/CGNAT, multicast, reserved or unspecified, also when
  an IPv4 address hides inside IPv6 (``::ffff:127.0.0.1``, NAT64, 6to4);
- this runs when a webhook is created (a 422 that says why) *and* at each
  delivery, which then connects to the address it checked, with the name in
  the Host header and TLS SNI, so a name that resolves elsewhere the second
  time (DNS rebinding) reaches nothing internal.

``webhook_allow_internal`` turns the check off, for receivers on your own
network (and for tests, whose receivers listen on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")


class Refused(ValueError):
    """The URL leads to an address webhooks may not reach (the message says which)."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the host resolves to, as the connection would resolve it.

    Blocking (run it in a thread). Tests replace it to fake DNS answers.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def why_internal(addr: str) -> str | None:
    """None for a public address; else what it is, in a few words."""
    ip: IP = ipaddress.ip_address(addr.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = why_internal(str(inner))
            return f"{reason} (as {ip})" if reason else None
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local (cloud metadata lives here)"
    if ip in ipaddress.ip_network("100.64.0.0/10"):
        return "shared address space (CGNAT)"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not public"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPAT and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def split(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; Refused when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("url must be an http(s) URL")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_addresses(host: str, addrs: list[str]) -> None:
    if not addrs:
        raise Refused(f"{host} has no address")
    for addr in addrs:
        reason = why_internal(addr)
        if reason is not None:
            shown = host if host == addr else f"{host} ({addr})"
            raise Refused(
                f"webhook URL leads to {shown}, a {reason} address; webhooks go to public "
                "addresses only (set webhook_allow_internal to allow your own network)"
            )


def check_url(url: str, allow_internal: bool) -> None:
    """At creation: Refused when the URL leads anywhere internal.

    A name that does not resolve now is accepted (its DNS may be on its way);
    every delivery checks again before it connects.
    """
    host, port = split(url)
    if allow_internal:
        return
    try:
        addrs = resolve_host(host, port)
    except (OSError, UnicodeError):
        return
    check_addresses(host, addrs)


async def pick(url: str, allow_internal: bool) -> str:
    """At delivery: the one address to connect to, checked (Refused if internal)."""
    host, port = split(url)
    try:
        addrs = await asyncio.to_thread(resolve_host, host, port)
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    if not allow_internal:
        check_addresses(host, addrs)
    if not addrs:
        raise OSError(f"{host} has no address")
    return addrs[0]
