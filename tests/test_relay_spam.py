"""Deliverability: tracking must not make a copy look more like spam.

Debian's SpamAssassin rules (the private spamd of tests/mailservers/: local
tests only, no network, no Bayes) score the original and each tracked copy;
a rule that hits a copy and not the original fails the test. The relay test
takes the copies from the stub upstream on purpose: they are compared with
what the client submitted byte for byte, before any MTA adds its headers.
The tracking domain is a real-looking hostname, as in a deployment (an IP
address in URLs is its own rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailbeacon.instrument.pixel import pixel_img
from mailbeacon.messages import open_url
from mailbeacon.relay import split
from mailbeacon.tokens import Signer
from tests.relay_helpers import Relay, Stub, html_of, mail, start_relay

Rules = Callable[[bytes], tuple[float, set[str]]]
BASE = "https://t.example.com"
DATE = "Date: Thu, 03 Dec 2026 09:00:00 +0000"
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
# An <img> outside any comment: what HTML_IMAGE_ONLY_* counts.
_BARE_IMG = re.compile(r"<img\b(?![^<]*<!\[endif\])", re.I)


@pytest.fixture
def relay(sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]) -> Iterator[Relay]:
    r = start_relay(sqlite_url, tmp_path, stub[1].port, extra_args=["--base-url", BASE])
    try:
        yield r
    finally:
        r.server.stop()


def _added(spam_rules: Rules, original: bytes, copy: bytes) -> set[str]:
    base = spam_rules(original)[1]
    assert base, "spamd reported no rule at all: is it working?"
    return spam_rules(copy)[1] - base


def test_tracked_copies_hit_no_rule_the_original_does_not(
    relay: Relay, stub: tuple[Stub, Controller], spam_rules: Rules
) -> None:
    rcpts = ["Bob Stone <bob@example.org>", "Cy Park <cy@example.org>"]
    addrs = ["bob@example.org", "cy@example.org"]
    original = mail(to=rcpts, subject="Spring project proposal", html=HTML, text=TEXT,
                    extra_headers=[DATE])  # fmt: skip
    clicks = original.replace(b"\r\n\r\n", b"\r\nX-Mailbeacon-Track: clicks\r\n\r\n", 1)
    # A signature logo: the message already has an image, so the pixel is an <img>.
    logo = mail(to=rcpts[:1], subject="Spring project proposal", text=TEXT,
                html=HTML.replace("Ana Lima<br>", 'Ana Lima<br><img src="https://www.example.com'
                                  '/logo.png" width="120" height="40" alt="Example"><br>'),
                extra_headers=[DATE])  # fmt: skip
    relay.send(original, addrs)
    relay.send(clicks, addrs)
    relay.send(logo, addrs[:1])
    got = stub[0].wait(5)
    assert all(f"{BASE}/o/" in d.html() and not _BARE_IMG.search(d.html()) for d in got[:2])
    assert all(f"{BASE}/c/" in d.html() for d in got[2:4])  # clicks
    assert f'<img src="{BASE}/o/' in got[4].html()
    for i, d in enumerate(got):
        added = _added(spam_rules, logo if i == 4 else original, d.data)
        assert not added, f"copy {i} adds {sorted(added)}"


def _letter(chars: int, filler: str) -> str:
    """An image-less HTML letter of exactly `chars` characters."""
    head, tail = HTML.split("<p>Best regards")
    room = chars - len(head) - len(tail) - len("<p></p>\n<p>Best regards")
    assert room > 0
    body = (filler * (room // len(filler) + 1))[:room]
    letter = f"{head}<p>{body}</p>\n<p>Best regards{tail}"
    assert len(letter) == chars
    return letter


@pytest.mark.parametrize(
    "filler",
    ["We would start the first phase in March with two people on site. ",
     "Reunião às 9h na sede, café incluído, e revisão do orçamento. "],  # 2-byte characters
    ids=["ascii", "utf8"],
)  # fmt: skip
def test_the_pixel_is_an_img_exactly_where_no_rule_counts_it(
    spam_rules: Rules, filler: str
) -> None:
    """HTML_IMAGE_ONLY_* count an <img> in HTML parts of up to 3,200
    characters: with the pixel one character under, at and over it, the copy
    adds no rule, and the pixel is an <img> from 3,201 on."""
    signer = Signer({1: b"k" * 32})
    pixel = len(pixel_img(open_url(BASE, signer, 7)))
    for total in (3199, 3200, 3201, 3202, 4000):
        raw = mail(subject="Spring project proposal", html=_letter(total - pixel, filler),
                   text=TEXT, extra_headers=[DATE])  # fmt: skip
        data = split.prepare(raw).data
        copy = split.make_copy(data, "opens", 7, signer, BASE).data
        html = html_of(copy)
        assert bool(_BARE_IMG.search(html)) == (total > split.IMAGE_ONLY_MAX), total
        assert len(html) >= total
        added = _added(spam_rules, raw, copy)
        assert not added, f"{total} characters with the pixel: the copy adds {sorted(added)}"
