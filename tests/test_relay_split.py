"""split.prepare / make_copy: the pure part of one copy per recipient."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mailbeacon.instrument import instrument_eml
from mailbeacon.instrument.prepared import prepare_eml
from mailbeacon.relay import split
from mailbeacon.relay.submit import PIXEL_ROOM
from mailbeacon.tokens import Signer
from tests import realworld
from tests.relay_helpers import mail

SIGNER = Signer({1: b"k" * 32})
BASE = "https://t.example.com"


@pytest.mark.parametrize(
    ("extra", "track", "campaign"),
    [
        ((), None, None),
        (("X-Mailbeacon-Track: clicks",), "clicks", None),
        (("X-Mailbeacon-Track: ALL", "X-Mailbeacon-Campaign: Spring"), "all", "Spring"),
        (("X-Mailbeacon-Track: sometimes",), None, None),  # unknown: the sender's default
    ],
)
def test_control_headers_are_read_and_removed(
    extra: tuple[str, ...], track: str | None, campaign: str | None
) -> None:
    prep = split.prepare(mail(bcc=["eve@example.com"], extra_headers=extra))
    assert (prep.track, prep.campaign) == (track, campaign)
    head = prep.header_block.lower()
    assert b"x-mailbeacon" not in head and b"bcc" not in head and b"eve@" not in head
    assert prep.message_id_header == "<proposal-1@example.com>"
    assert prep.from_addresses == ("ana@example.com",)


def test_other_headers_keep_their_bytes_and_folding() -> None:
    raw = (
        b"From: ana@example.com\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n"
        b"Bcc: eve@example.com,\r\n  fay@example.com\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n"
        b"Message-ID: <m@x>\r\n\r\nbody\r\n.line\r\n"
    )
    prep = split.prepare(raw)
    assert prep.data == raw.replace(b"Bcc: eve@example.com,\r\n  fay@example.com\r\n", b"")
    assert prep.subject == "Café"


def test_a_message_id_is_added_when_missing() -> None:
    prep = split.prepare(b"From: ana@example.com\r\nSubject: x\r\n\r\nhi\r\n", "example.com")
    assert prep.message_id_header.endswith("@example.com>")
    assert prep.data.startswith(b"From: ana@example.com\r\nSubject: x\r\nMessage-ID: <")
    assert prep.data.endswith(b"\r\n\r\nhi\r\n")


def test_unchanged_submission_is_not_copied() -> None:
    raw = b"From: a@b.co\r\nMessage-ID: <1@b.co>\r\n\r\nhi\r\n"
    assert split.prepare(raw).data is raw


@pytest.mark.parametrize(
    ("mode", "pixel", "clicks"),
    [("opens", True, False), ("clicks", False, True), ("all", True, True), ("off", False, False)],
)
def test_modes(mode: str, pixel: bool, clicks: bool) -> None:
    data = split.prepare(mail()).data
    copy = split.make_copy(data, mode, 7, SIGNER, BASE)
    assert copy.tracked == (mode != "off")
    assert (f"{BASE}/o/".encode() in _html(copy.data)) == pixel
    assert (f"{BASE}/c/".encode() in _html(copy.data)) == clicks
    assert copy.links == ([(1, "https://example.com/offer")] if clicks else [])
    # Deterministic: a retry days later makes the same bytes.
    assert split.make_copy(data, mode, 7, SIGNER, BASE).data == copy.data


def test_plain_text_and_unparseable_mail_go_out_unchanged() -> None:
    plain = split.prepare(mail(html=None)).data
    copy = split.make_copy(plain, "all", 7, SIGNER, BASE)
    assert copy.data is plain and not copy.tracked
    junk = b"\x00\xff not a message \r\n\r\n--\r\n"
    assert split.make_copy(junk, "all", 7, SIGNER, BASE).data == junk


def test_attachments_stay_byte_identical() -> None:
    blob = bytes(range(256)) * 4000
    data = split.prepare(mail(attachment=blob)).data
    copy = split.make_copy(data, "all", 7, SIGNER, BASE)
    assert copy.tracked
    att = data[data.index(b"Content-Disposition: attachment") :]
    assert att in copy.data


def _html(data: bytes) -> bytes:
    from email import message_from_bytes

    for part in message_from_bytes(data).walk():
        if part.get_content_type() == "text/html":
            got = part.get_payload(decode=True)
            assert isinstance(got, bytes)
            return got
    return b""


def test_copy_maker_reads_the_message_once_and_makes_the_same_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = split.prepare(mail()).data
    calls = []
    real = split.prepare_eml
    monkeypatch.setattr(split, "prepare_eml", lambda d, **kw: calls.append(1) or real(d, **kw))
    for mode in ("opens", "clicks", "all"):
        make = split.copy_maker(data, mode, SIGNER, BASE)
        copies = [make(mid) for mid in (7, 8, 9)]
        assert copies == [split.make_copy(data, mode, mid, SIGNER, BASE) for mid in (7, 8, 9)]
        assert len({c.data for c in copies}) == 3
    assert len(calls) == 3  # once per message, not once per copy
    junk = b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary"
    assert split.copy_maker(junk, "all", SIGNER, BASE)(7) == split.Copy(junk, [], False)


EMAILS = Path(__file__).parent / "data" / "emails"


def _messages() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted(EMAILS.glob("*.eml"))]
    html = (EMAILS / "newsletter-60k.html").read_text("utf-8")
    out.append(("newsletter", mail(html=html, text="Our news: https://example.com/n\n")))
    out.append(("attachment", mail(attachment=os.urandom(3000))))
    long_8bit = mail(html="<p>" + "word " * 400 + '<a href="https://example.com/x">x</a></p>')
    out.append(("8bit", long_8bit.replace(b"base64", b"8bit")))
    two = '<a href="https://example.com/refuse">r</a> <a href="https://example.com/ok">ok</a>'
    out.append(("refused-link", mail(html=two)))
    # Base64 bodies of other shapes: a copy re-encodes only what follows its
    # first change when lines hold whole 3-byte groups (widths 76, 72, 64).
    text = "<p>Caf\u00e9 " + "word " * 300 + '<a href="https://example.com/x">x</a></p>'
    for width, eol in ((72, b"\n"), (64, b"\r\n"), (70, b"\r\n"), (0, b"\r\n")):
        for charset in ("utf-8", "iso-8859-1"):
            enc = base64.b64encode(text.encode(charset))
            body = eol.join(enc[i : i + width] for i in range(0, len(enc), width or len(enc)))
            head = f"Content-Type: text/html; charset={charset}".encode() + eol
            part = head + b"Content-Transfer-Encoding: base64" + eol + eol + body + eol
            out.append((f"base64-{width}-{len(eol)}-{charset}", part))
    return out


@pytest.mark.parametrize(("name", "data"), _messages(), ids=[n for n, _ in _messages()])
@pytest.mark.parametrize("clicks", ["off", "safe", "all"])
def test_prepared_render_is_instrument_eml(name: str, data: bytes, clicks: str) -> None:
    """instrument/prepared.py: the relay's once-per-message reading gives
    what instrument_eml gives, copy after copy (signing is per copy)."""
    prepared = prepare_eml(data, clicks=clicks, tracked_prefixes=(BASE + "/c/",))  # type: ignore[arg-type]
    for mid in (1, 2):

        def track(url: str, pos: int, mid: int = mid) -> str:
            if "refuse" in url:
                raise ValueError(url)
            return f"{BASE}/c/{mid}-{pos}"

        kw = {"track": track, "pixel_html": f'<img src="{BASE}/o/{mid}.gif">'}
        want = instrument_eml(data, clicks=clicks, tracked_prefixes=(BASE + "/c/",), **kw)  # type: ignore[arg-type]
        assert prepared.render(**kw) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "data"), _messages(), ids=[n for n, _ in _messages()])
def test_prepared_without_skipped_gives_the_same_pixel_only_copy(name: str, data: bytes) -> None:
    """`opens` copies (clicks off) skip reading the links: the same bytes,
    pixel place and notes as instrument_eml, only no `skipped` list."""
    prepared = prepare_eml(data, clicks="off", skipped=False)

    def track(url: str, pos: int) -> str:
        raise AssertionError("no link is signed with clicks off")

    kw = {"track": track, "pixel_html": f'<img src="{BASE}/o/1.gif">'}
    want = instrument_eml(data, clicks="off", **kw)  # type: ignore[arg-type]
    got = prepared.render(**kw)  # type: ignore[arg-type]
    assert got.skipped == []
    got.skipped = want.skipped
    assert got == want


def _opens_cases() -> list[tuple[str, bytes]]:
    real = [(p.name, p.read_bytes()) for p in realworld.eml_files()]
    return _messages() + real


@pytest.mark.parametrize(("name", "data"), _opens_cases(), ids=[n for n, _ in _opens_cases()])
def test_a_pixel_only_copy_fits_the_size_declared_before_it(name: str, data: bytes) -> None:
    """The relay declares SIZE before an `opens` copy exists (submit.py,
    PIXEL_ROOM): the copy, pixel and all, must never be bigger, on our cases
    and on every real .eml of the shared corpus, with a long tracking host."""
    base = "https://tracking.mail-delivery-department.example-company.co.uk"
    prep = split.prepare(data)
    make = split.copy_maker(prep.data, "opens", SIGNER, base)
    for mid in (1, 2**40):
        copy = make(mid).data
        assert len(copy) <= len(prep.data) + PIXEL_ROOM, (name, len(copy) - len(prep.data))
