"""What "Send through mailbeacon" tells a mail client (host, ports, security)
and the words for a copy's state in the queue: table-driven, no server."""

from __future__ import annotations

from typing import Any

import pytest

from mailbeacon.config import Settings
from mailbeacon.web.dashboard.send_settings import (
    Port,
    copy_state,
    retry_words,
    smtp_settings,
)

CERT = {"relay_tls_cert": "cert.pem", "relay_tls_key": "key.pem"}


@pytest.mark.parametrize(
    ("given", "host", "ports", "local_only"),
    [
        ({}, "mail.example.com", (), True),  # off: no port
        ({"relay_port": 2525}, "mail.example.com", (Port(2525, "None"),), True),
        (
            {"relay_host": "0.0.0.0", "relay_port": 587, **CERT},
            "mail.example.com",
            (Port(587, "STARTTLS"),),
            False,
        ),
        (
            {"relay_host": "::", "relay_port": 587, "relay_smtps_port": 465, **CERT},
            "mail.example.com",
            (Port(465, "SSL/TLS"), Port(587, "STARTTLS")),
            False,
        ),
        ({"relay_host": "smtp.example.net", "relay_port": 587}, "smtp.example.net",
         (Port(587, "None"),), False),
        ({"relay_host": "::1", "relay_port": 587}, "mail.example.com", (Port(587, "None"),), True),
    ],
)  # fmt: skip
def test_host_and_ports(
    given: dict[str, Any], host: str, ports: tuple[Port, ...], local_only: bool
) -> None:
    got = smtp_settings(Settings(**given), "mail.example.com")
    assert (got.host, got.ports, got.local_only) == (host, ports, local_only)
    assert got.enabled == bool(ports)


@pytest.mark.parametrize(
    ("row", "state", "reply"),
    [
        ({"status": "sent", "attempts": 1, "last_code": 250}, "sent", ""),
        ({"status": "pending", "attempts": 0}, "queued", ""),
        ({"status": "pending", "attempts": 0, "last_code": 451, "last_error": "later"},
         "queued", "451 later"),
        ({"status": "pending", "attempts": 3, "last_code": 421, "last_error": "busy"},
         "retrying", "421 busy"),
        ({"status": "failed", "attempts": 1, "last_code": 550, "last_error": "no such user"},
         "bounced", "550 no such user"),
        ({"status": "failed", "attempts": 9, "last_code": 451, "last_error": "later"},
         "given up", "451 later"),
        ({"status": "failed", "attempts": 1, "last_code": None, "last_error": "gone"},
         "given up", "gone"),
    ],
)  # fmt: skip
def test_copy_states(row: dict[str, Any], state: str, reply: str) -> None:
    got = copy_state(row)
    assert (got.state, got.reply) == (state, reply)


def test_retry_words_follow_the_settings() -> None:
    assert retry_words(Settings()) == (
        "tried again after 1 min, then at doubling intervals of up to an hour, for 2 days"
    )
    assert "after 0.3 s" in retry_words(Settings(relay_retry_base=0.3, relay_max_age=3600))
