"""What "Send through mailbeacon" tells a mail client, and the words for a
copy's state in the outgoing queue. Pure: settings and rows in, words out.

The host a client connects to: the relay's ``smtp_host`` (``relay_host``)
when it names one address or host; when it listens on every interface
(``0.0.0.0``, ``::``) or only on loopback, the host name the browser used to
reach this dashboard, because that is the name people already reach the
server by (with a loopback bind a client elsewhere cannot connect: the page
says so). Ports come from the node's settings: ``relay_smtps_port`` (SSL/TLS
from the first byte, RFC 8314's choice) first, then ``relay_port`` with
STARTTLS when a certificate is configured, or without TLS, where the relay
takes a password only from loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from mailbeacon.config import Settings
from mailbeacon.store import outgoing

WILDCARD = ("", "0.0.0.0", "::", "*")


@dataclass(frozen=True)
class Port:
    number: int
    security: str  # as mail clients name it: "SSL/TLS", "STARTTLS" or "None"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    ports: tuple[Port, ...]  # the one to use first
    local_only: bool  # the relay listens on loopback: only this machine can connect

    @property
    def enabled(self) -> bool:
        return bool(self.ports)

    @property
    def port(self) -> Port | None:
        return self.ports[0] if self.ports else None

    @property
    def encrypted(self) -> bool:
        return self.port is not None and self.port.security != "None"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def smtp_settings(settings: Settings, request_host: str | None) -> SmtpSettings:
    bind = settings.relay_host.strip()
    local_only = is_loopback(bind)
    host = bind if bind not in WILDCARD and not local_only else (request_host or bind)
    ports: list[Port] = []
    if settings.relay_smtps_port:
        ports.append(Port(settings.relay_smtps_port, "SSL/TLS"))
    if settings.relay_port:
        tls = bool(settings.relay_tls_cert)
        ports.append(Port(settings.relay_port, "STARTTLS" if tls else "None"))
    return SmtpSettings(host=host, ports=tuple(ports), local_only=local_only)


@dataclass(frozen=True)
class CopyState:
    state: str  # queued | retrying | sent | bounced | given up
    badge: str  # a badge class of app.css
    reply: str  # the upstream's last reply ("" when none)


# The badge each state wears (classes of app.css).
_BADGES = {
    "sent": "human",
    "queued": "unknown",
    "retrying": "machine",
    "bounced": "scanner",
    "given up": "scanner",
}


def copy_state(row: dict[str, Any]) -> CopyState:
    """One row of ``store.outgoing.copies``: its state (``outgoing.state_of``),
    badge and the upstream's last reply."""
    state = outgoing.state_of(row)
    code, error = row.get("last_code"), row.get("last_error")
    reply = "" if state == "sent" else " ".join(str(x) for x in (code, error) if x)
    return CopyState(state, _BADGES[state], reply)


def _span(seconds: float) -> str:
    """60 -> '1 min', 172800 -> '2 days', 0.3 -> '0.3 s' (whole units where they fit)."""
    for size, one, many in ((86400, "day", "days"), (3600, "hour", "hours"), (60, "min", "min")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {one if n == 1 else many}"
    return f"{seconds:g} s"


def retry_words(settings: Settings) -> str:
    """The queue's retry policy (relay/queue.py, store.outbox.backoff) in words."""
    return (
        f"tried again after {_span(settings.relay_retry_base)}, then at doubling intervals "
        f"of up to an hour, for {_span(settings.relay_max_age)}"
    )
