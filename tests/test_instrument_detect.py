"""Telling a message from an HTML body by its content, and reading HTML bytes."""

from __future__ import annotations

import pytest

from mailbeacon.instrument.detect import decode_html, python_codec, sniff

LONG_RECEIVED = b"".join(
    b"Received: from relay%d.example.net (relay%d.example.net [192.0.2.%d])\n"
    b"\tby mx.example.org with ESMTPS id abc%d; Mon, 1 Jan 2024 00:00:00 +0000\n" % (i, i, i, i)
    for i in range(30)
)

SNIFF = [
    (b"<!doctype html><html><body>x</body></html>", "html"),
    (b"\xef\xbb\xbf\r\n  <p>fragment</p>", "html"),
    (b"Hello there,\n\nplain words", "html"),
    (b"From: a@b.test\nSubject: hi\n\n<p>x</p>", "eml"),
    (b"From: a@b.test\r\nSubject: hi\r\n\r\n<p>x</p>", "eml"),
    # Headers longer than 2 KB before the first MIME field (29 of 122 real mails).
    (LONG_RECEIVED + b"Content-Type: text/html\n\n<p>x</p>", "eml"),
    # An mbox export: the "From " envelope line comes first.
    (b"From ana@example.com Mon Jan  1 00:00:00 2024\nFrom: ana@example.com\n\nx", "eml"),
    (b"Subject: folded\n  over two lines\nX-Other: y\n\nbody", "eml"),
    (b"Content-Type: text/html\n<html>no blank line</html>", "eml"),
    (b"Note: this is text, not mail\n\nmore", "html"),
    (b" continuation: first\nFrom: a@b.test\n\n", "html"),
    (b"", "html"),
]


@pytest.mark.parametrize(("data", "kind"), SNIFF)
def test_sniff(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


DECODE = [
    (b"<p>Gr\xc3\xbc\xc3\x9fe</p>", "utf-8", "<p>Grüße</p>"),
    (b'<meta charset="iso-8859-1"><p>Gr\xfc\xdfe</p>', "cp1252", "<p>Grüße</p>"),
    (
        b"<meta http-equiv=Content-Type content='text/html; charset=x-mac-cyrillic'>\x8f",
        "mac-cyrillic",
        "П",
    ),
    (b"<p>Gr\xfc\xdfe</p>", "utf-8", "<p>Gr\udcfc\udcdfe</p>"),  # no charset: bytes kept
]


@pytest.mark.parametrize(("data", "codec", "needle"), DECODE)
def test_decode_html_round_trips(data: bytes, codec: str, needle: str) -> None:
    text, got = decode_html(data)
    assert got == codec and needle in text
    assert text.encode(got, "surrogateescape") == data


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("x-mac-cyrillic", "mac-cyrillic"),
        ("ISO-8859-1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("gb2312", "gbk"),
        ('"utf-8"', "utf-8"),
        ("utf-7", "utf-7"),
        ("iso-2022-jp", "iso2022_jp"),
        ("x-no-such-charset", None),
        (None, "utf-8"),
    ],
)
def test_python_codec(label: str | None, codec: str | None) -> None:
    assert python_codec(label) == codec
