"""Deliverability: tracking must not make a copy look more like spam.

Debian's SpamAssassin (local rules only: -L, nothing is looked up on the
network) scores the original and each copy the relay sent, in the default
mode (opens) and in the clicks mode; a rule that hits a copy and not the
original fails the test. The tracking domain is a real-looking hostname, as
in a deployment (an IP address in URLs is its own rule).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.relay_helpers import Relay, Stub, mail, start_relay

pytestmark = pytest.mark.skipif(
    shutil.which("spamassassin") is None, reason="Debian's spamassassin is not installed"
)

HTML = """<html><head><meta charset="utf-8"></head><body>
<p>Hi Bob,</p>
<p>Thanks for the call today. As promised, here is
<a href="https://www.example.com/proposal/2026">our proposal for the spring project</a>,
and the <a href="https://docs.example.com/terms">terms we discussed</a>.</p>
<p>Our site: <a href="https://www.example.com/">https://www.example.com/</a></p>
<p>Best regards,<br>Ana Lima<br>Example Consulting</p>
</body></html>"""
TEXT = (
    "Hi Bob,\n\nThanks for the call today. As promised, here is our proposal for the spring "
    "project: https://www.example.com/proposal/2026\nand the terms we discussed: "
    "https://docs.example.com/terms\n\nBest regards,\nAna Lima\nExample Consulting\n"
)
_RULE = re.compile(r"^\s*-?\d+\.\d+\s+([A-Z0-9_]+)\s", re.M)


@pytest.fixture
def relay(sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]) -> Iterator[Relay]:
    r = start_relay(
        sqlite_url, tmp_path, stub[1].port, extra_args=["--base-url", "https://t.example.com"]
    )
    try:
        yield r
    finally:
        r.server.stop()


def rules(raw: bytes, home: Path) -> set[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    report = subprocess.run(
        ["spamassassin", "-L", "-t", "-p", str(home / "user_prefs")],
        input=raw, capture_output=True, timeout=120, env=env,
    ).stdout.decode("utf-8", "replace")  # fmt: skip
    details = report.split("Content analysis details:", 1)[-1]
    return set(_RULE.findall(details))


def test_tracked_copies_hit_no_rule_the_original_does_not(
    relay: Relay, stub: tuple[Stub, Controller], tmp_path: Path
) -> None:
    rcpts = ["Bob Stone <bob@example.org>", "Cy Park <cy@example.org>"]
    addrs = ["bob@example.org", "cy@example.org"]
    original = mail(to=rcpts, subject="Spring project proposal", html=HTML, text=TEXT,
                    extra_headers=["Date: Thu, 03 Dec 2026 09:00:00 +0000"])  # fmt: skip
    clicks = original.replace(b"\r\n\r\n", b"\r\nX-Mailbeacon-Track: clicks\r\n\r\n", 1)
    # A signature logo: the message already has an image, so the pixel is an <img>.
    logo = mail(to=rcpts[:1], subject="Spring project proposal", text=TEXT,
                html=HTML.replace("Ana Lima<br>", 'Ana Lima<br><img src="https://www.example.com'
                                  '/logo.png" width="120" height="40" alt="Example"><br>'),
                extra_headers=["Date: Thu, 03 Dec 2026 09:00:00 +0000"])  # fmt: skip
    relay.send(original, addrs)
    relay.send(clicks, addrs)
    relay.send(logo, addrs[:1])
    got = stub[0].wait(5)
    assert all("https://t.example.com/o/" in d.html() for d in got[:2])  # opens (default)
    assert all("https://t.example.com/c/" in d.html() for d in got[2:4])  # clicks
    assert '<img src="https://t.example.com/o/' in got[4].html()
    with ThreadPoolExecutor(2) as pool:
        base, logo_base, *seen = pool.map(
            lambda raw: rules(raw, tmp_path), [original, logo, *(d.data for d in got)]
        )
    assert base, "spamassassin reported nothing: is it working?"
    for i, hits in enumerate(seen):
        ref = logo_base if i == 4 else base
        assert hits <= ref, f"copy {i} adds {sorted(hits - ref)} (original: {sorted(ref)})"
