"""Whole messages: headers byte-identical, HTML parts instrumented and re-encoded
with their own transfer encoding and charset, text parts untouched unless asked."""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from mailbeacon.instrument import Skip, instrument_eml, instrument_html
from mailbeacon.instrument.detect import python_codec
from mailbeacon.instrument.mime import decode_body, transfer_encoding, walk

EMAILS = Path(__file__).parent / "data" / "emails"
PIXEL = '<img src="https://t.test/o/OPEN.gif" width="1" height="1" alt="">'


def track(url: str, position: int) -> str:
    return f"https://t.test/c/{position}"


def read(name: str) -> bytes:
    return (EMAILS / name).read_bytes()


def header_blocks(data: bytes) -> list[bytes]:
    """Every header block (top level and per part), as raw bytes."""
    return [data[p.header_start : p.body_start] for p in walk(data)] + [
        data[: re.search(rb"\r?\n\r?\n", data).end()]  # type: ignore[union-attr]
    ]


def parts(data: bytes) -> list[EmailMessage]:
    msg = email.message_from_bytes(data, policy=default)
    return [p for p in msg.walk() if not p.is_multipart()]


EML = {
    # name: (links, HTML parts instrumented)
    "alternative-qp-latin1.eml": ([(1, "https://cafe.example/menu?jour=lundi&utm_source=mail")], 1),
    "mixed-related-base64-cp1252.eml": (
        [(1, "https://shop.example/deal?id=7&utm_source=mail"), (2, "https://bit.ly/3abcd")],
        1,
    ),
    "html-only-8bit-utf8.eml": ([(1, "https://docs.studio.example/p?v=2&l=de")], 1),
}


@pytest.mark.parametrize("name", sorted(EML))
def test_round_trip(name: str) -> None:
    src = read(name)
    links, html_parts = EML[name]
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    assert isinstance(res.eml, bytes)
    assert res.links == links and res.html_parts == html_parts
    # Headers, top-level and per part, byte-identical; same part layout.
    assert header_blocks(res.eml) == header_blocks(src)
    before, after = parts(src), parts(res.eml)
    assert [p.get_content_type() for p in before] == [p.get_content_type() for p in after]
    for old, new in zip(before, after, strict=True):
        assert new["Content-Transfer-Encoding"] == old["Content-Transfer-Encoding"]
        assert new.get_content_charset() == old.get_content_charset()
        is_html = old.get_content_type() == "text/html" and not old.is_attachment()
        if not is_html:
            # Untouched parts keep their encoded bytes exactly.
            assert new.get_payload(decode=False) == old.get_payload(decode=False)
            continue
        html_old, html_new = old.get_content(), new.get_content()
        assert html_new.count(PIXEL) == 1
        # The decoded HTML is exactly what instrument_html makes of the decoded input.
        expected = instrument_html(html_old, track=track, pixel_html=PIXEL)
        assert html_new == expected.html
        for position, _ in links:
            if f"https://t.test/c/{position}" in html_new:
                break
        else:
            pytest.fail("no tracked link in the HTML part")


def test_qp_latin1_keeps_accents_and_encoding() -> None:
    res = instrument_eml(read("alternative-qp-latin1.eml"), track=track, pixel_html=PIXEL)
    body = res.eml.decode("ascii")  # quoted-printable stays 7-bit
    assert "Ren=E9e" in body and "caf=E9" in body
    assert 'href=3D"https://t.test/c/1"' in body
    assert all(len(line) <= 76 for line in body.splitlines())
    assert res.eml.endswith(b"--==alt-1==--\nepilogue text\n")


def test_base64_cp1252_keeps_smart_quotes_width_and_crlf() -> None:
    src = read("mixed-related-base64-cp1252.eml")
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    html = next(
        p for p in parts(res.eml) if p.get_content_type() == "text/html" and not p.is_attachment()
    )
    text = html.get_content()
    assert "\u201cSmart quotes\u201d \u2013 and a \u20ac sign." in text
    raw = html.get_payload(decode=True)
    assert b"\x93Smart quotes\x94" in raw  # still windows-1252 bytes
    b64_lines = [ln for ln in res.eml.split(b"\r\n") if re.fullmatch(rb"[A-Za-z0-9+/=]{60,}", ln)]
    assert b64_lines and all(len(ln) == 76 for ln in b64_lines[:-1])
    assert b"\n" not in res.eml.replace(b"\r\n", b"")  # CRLF throughout
    # The attached .html is not the message body: left alone.
    assert b'<a href="https://attached.example/">attached</a>' in res.eml


def test_text_plain_untouched_unless_asked() -> None:
    src = read("alternative-qp-latin1.eml")
    off = instrument_eml(src, track=track, pixel_html=PIXEL)
    plain_old = next(p for p in parts(src) if p.get_content_type() == "text/plain")
    plain_new = next(p for p in parts(off.eml) if p.get_content_type() == "text/plain")
    assert plain_new.get_payload(decode=False) == plain_old.get_payload(decode=False)

    on = instrument_eml(src, track=track, pixel_html=PIXEL, text_links=True)
    # Same URL in text and HTML: same position; new URLs from text come after.
    assert on.links == [
        (1, "https://cafe.example/menu?jour=lundi&utm_source=mail"),
        (2, "https://cafe.example/carte"),
    ]
    text = next(p for p in parts(on.eml) if p.get_content_type() == "text/plain").get_content()
    assert "Voir le menu: https://t.test/c/1\n" in text
    assert "Autre: https://t.test/c/2.\n" in text  # the sentence's full stop stays outside
    assert "Renée" in text
    assert header_blocks(on.eml) == header_blocks(src)


def test_str_input_and_modes() -> None:
    src = read("html-only-8bit-utf8.eml").decode("utf-8")
    res = instrument_eml(src, track=track, pixel_html=PIXEL, clicks="off")
    assert res.links == [] and isinstance(res.eml, bytes)
    # An 8bit part with no <body>: the pixel is appended, every other byte kept.
    assert res.eml == src.encode("utf-8") + PIXEL.encode()


def test_unknown_charset_is_left_alone() -> None:
    src = (
        b"From: a@b.test\nContent-Type: text/html; charset=x-no-such-charset\n\n"
        b'<a href="https://a.test/">x</a>\n'
    )
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    assert res.eml == src and res.html_parts == 0 and res.notes


# --- sloppy MIME: as lenient as mail clients, never damaging -------------------------

HEAD = b"From: a@b.test\nSubject: s\nMIME-Version: 1.0\n"
ALT = b'Content-Type: multipart/alternative; boundary="b"\n\n'
TEXT = b"--b\nContent-Type: text/plain\n\nplain text\n"
HTML_PART = (
    b'--b\nContent-Type: text/html\n\n<html><body><a href="https://a.test/">Go</a></body></html>\n'
)

SLOPPY: list[tuple[str, bytes, int, str]] = [
    # (case, message, pixels expected, a note that must be given)
    ("closed", HEAD + ALT + TEXT + HTML_PART + b"--b--\n", 1, ""),
    # 6 of 122 real messages: no close delimiter. The last part runs to the end.
    ("no closing boundary", HEAD + ALT + TEXT + HTML_PART, 1, "no closing boundary"),
    (
        "no closing boundary, CRLF",
        (HEAD + ALT + TEXT + HTML_PART).replace(b"\n", b"\r\n"),
        1,
        "no closing boundary",
    ),
    (
        "nested, neither closed",
        HEAD + b'Content-Type: multipart/mixed; boundary="ab"\n\n--ab\n'
        b'Content-Type: multipart/alternative; boundary="a"\n\n--a\nContent-Type: text/plain\n\n'
        b"body\n--ab\nContent-Type: text/html\n\n<p>body2</p>",
        1,
        "no closing boundary",
    ),
    (
        "no blank line after the part's headers",
        HEAD
        + ALT
        + TEXT
        + b"--b\nContent-Type: text/html\n<html><body><p>hi</p></body></html>\n--b--\n",
        1,
        "no blank line after its headers",
    ),
    (
        "headers run to the end of the part",
        HEAD + ALT + TEXT + b"--b\nContent-Type: text/html\n--b--\n",
        0,
        "no body after its headers, left alone",
    ),
    (
        "no boundary line at all",
        HEAD + ALT + b"just text, the boundary never comes\n",
        0,
        "no boundary line",
    ),
    (
        "'quoted printable' with a space",
        HEAD + b"Content-Type: text/html\nContent-Transfer-Encoding: quoted printable\n\n"
        b'<p style=3D"margin:0">caf=C3=A9</p>\n',
        1,
        "",
    ),
]


@pytest.mark.parametrize(("case", "src", "pixels", "note"), SLOPPY, ids=[c[0] for c in SLOPPY])
def test_sloppy_mime(case: str, src: bytes, pixels: int, note: str) -> None:
    res = instrument_eml(src, track=track, pixel_html=PIXEL, clicks="all")
    assert res.html_parts == pixels
    assert not note or any(note in n for n in res.notes), res.notes
    if pixels == 0:
        assert res.eml == src
        return
    # Every byte outside the HTML part's body is kept, and the part reads back
    # with the pixel exactly once, after the HTML and never in a header.
    html = [p for p in parts(res.eml) if p.get_content_type() == "text/html"]
    assert len(html) == 1
    # Decoded as we read the transfer encoding ("quoted printable" is QP,
    # which the stdlib does not know); other cases decode the same either way.
    raw = html[0].get_payload(decode=False).encode("ascii", "surrogateescape")
    body = decode_body(raw, transfer_encoding(html[0])).decode()
    assert body.count(PIXEL) == 1 and not body.startswith(PIXEL)
    assert header_blocks(res.eml) == header_blocks(src)
    assert res.eml.replace(b"\r\n", b"\n").count(b"\nContent-Type: text/html\n") == 1


def _single(ctype: bytes, cte: bytes, body: bytes) -> bytes:
    return (
        b"From: a@b.test\nMIME-Version: 1.0\nContent-Type: " + ctype + b"\n"
        b"Content-Transfer-Encoding: " + cte + b"\n\n" + body
    )


CYRILLIC = "<html><body><p>Привет</p><a href='https://a.test/'>Ссылка</a></body></html>\n"
JAPANESE = "<html><body><p>こんにちは</p></body></html>\n"
CHARSETS: list[tuple[str, bytes, str | None, str]] = [
    # (case, message, text the HTML must read as afterwards (None: left alone), note)
    (
        "x-mac-cyrillic, which only the WHATWG table names",
        _single(
            b"text/html; charset=x-mac-cyrillic",
            b"quoted-printable",
            binascii.b2a_qp(CYRILLIC.encode("mac_cyrillic")),
        ),
        "Привет",
        "",
    ),
    (
        "UTF-16 big-endian with a BOM, labelled utf-16",
        _single(
            b"text/html; charset=utf-16",
            b"base64",
            base64.encodebytes(codecs.BOM_UTF16_BE + CYRILLIC.encode("utf-16-be")),
        ),
        "Привет",
        "",
    ),
    (
        "ISO-2022-JP round-trips",
        _single(b"text/html; charset=iso-2022-jp", b"7bit", JAPANESE.encode("iso2022_jp")),
        "こんにちは",
        "",
    ),
    (
        "a charset Python does not have",
        _single(b"text/html; charset=x-no-such", b"8bit", b"<p>x</p>"),
        None,
        "unknown charset 'x-no-such', left alone",
    ),
    (
        "base64 that does not decode cleanly",
        _single(b"text/html; charset=utf-8", b"base64", b"PHA+aGk8L3A+P\n"),
        None,
        "its base64 does not decode cleanly, left alone",
    ),
]


@pytest.mark.parametrize(("case", "src", "reads", "note"), CHARSETS, ids=[c[0] for c in CHARSETS])
def test_charsets(case: str, src: bytes, reads: str | None, note: str) -> None:
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    if reads is None:
        assert res.eml == src and res.html_parts == 0
        assert any(note in n for n in res.notes), res.notes
        return
    [html] = [p for p in parts(res.eml) if p.get_content_type() == "text/html"]
    payload = html.get_payload(decode=True)
    before = next(p for p in parts(src) if p.get_content_type() == "text/html")
    assert payload[:2] == before.get_payload(decode=True)[:2]  # a BOM keeps its byte order
    bom = payload[:2] in (codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)
    text = payload.decode("utf-16" if bom else python_codec(html.get_content_charset()) or "")
    assert reads in text and text.count(PIXEL) == 1 and res.html_parts == 1


def test_text_a_list_server_appended_to_base64_is_kept() -> None:
    footer = b"_______________\nSLAT-talk mailing list\nhttp://lists.example/listinfo\n"
    html = b"<html><body><p>hi</p></body></html>"
    src = _single(b"text/html; charset=utf-8", b"base64", base64.encodebytes(html) + footer)
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    assert res.html_parts == 1 and res.eml.endswith(footer)
    assert any("bytes of text after its base64 kept as they are" in n for n in res.notes)
    b64 = res.eml[len(src) - len(footer) - len(base64.encodebytes(html)) : -len(footer)]
    assert base64.b64decode(b64) == html.replace(b"</body>", PIXEL.encode() + b"</body>")


B64 = base64.encodebytes(b"<html><body><p>hi</p></body></html>")  # LF-ended lines
PADDED = base64.encodebytes(b"<html><body><p>hi!</p></body></html>\n")  # ends "=="
BASE64_BODIES = [
    # (case, body, how many bytes at its end are kept as text after the base64)
    ("LF lines", B64, 0),
    ("CRLF lines", B64.replace(b"\n", b"\r\n"), 0),
    ("last line without a line break", B64.rstrip(b"\n"), 0),
    ("blank lines and trailing spaces", B64.replace(b"\n", b" \t\n", 1) + b"\n\n", 0),
    ("a footer after it", B64 + b"-- \nList footer\n", len(b"-- \nList footer\n")),
    ("a footer line without a line break", B64 + b"footer: x", len(b"footer: x")),
    ("padding, CRLF lines", PADDED.replace(b"\n", b"\r\n"), 0),
    ("an = inside a line after it", B64 + b"a=b\n", len(b"a=b\n")),
    ("a CR inside a line after it", B64 + b"abc\rdef\n", len(b"abc\rdef\n")),
    # As many CRs as LFs, alternating, but one CR away from its LF.
    ("CRLF lines, then a CR inside a line", B64.replace(b"\n", b"\r\n") + b"ab\rcd\n", 6),
]


@pytest.mark.parametrize(("case", "body", "kept"), BASE64_BODIES, ids=[c[0] for c in BASE64_BODIES])
def test_where_the_base64_of_a_part_ends(case: str, body: bytes, kept: int) -> None:
    """read_text finds the run of base64 lines and keeps what follows as it is."""
    src = _single(b"text/html; charset=utf-8", b"base64", body)
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    assert res.html_parts == 1 and res.eml.endswith(body[len(body) - kept :])
    assert any("after its base64" in n for n in res.notes) == bool(kept), res.notes
    [html] = [p for p in parts(res.eml) if p.get_content_type() == "text/html"]
    assert PIXEL.encode() in html.get_payload(decode=True)


MULTIPARTS = [
    # (case, body after the headers, (content type, body) of each leaf part)
    ("LF", b"--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n--b--\n",
     [("text/plain", b"one"), ("text/plain", b"two")]),
    ("CRLF", b"--b\r\nContent-Type: text/html\r\n\r\n<p>1</p>\r\n--b--\r\n",
     [("text/html", b"<p>1</p>")]),
    ("an empty part between two delimiters", b"--b\n--b\n\ntwo\n--b--\n",
     [("text/plain", b""), ("text/plain", b"two")]),
    ("a preamble, spaces after a delimiter, an epilogue",
     b"preamble\n--b \t\n\none\n--b-- \nepilogue\n", [("text/plain", b"one")]),
    ("--b inside a line is not a delimiter", b"--b\n\nx --b y\n--bc\n--b--\n",
     [("text/plain", b"x --b y\n--bc")]),
    ("no closing delimiter", b"--b\n\nlast\n", [("text/plain", b"last\n")]),
    ("the closing delimiter at the very end", b"--b\n\nend\n--b--",
     [("text/plain", b"end")]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "leaves"), MULTIPARTS, ids=[c[0] for c in MULTIPARTS])
def test_multipart_delimiters(case: str, body: bytes, leaves: list[tuple[str, bytes]]) -> None:
    """RFC 2046 delimiters: at a line's start, the line break before one belongs to it."""
    data = b"Content-Type: multipart/mixed; boundary=b\n\n" + body
    got = [(p.content_type, data[p.body_start : p.body_end]) for p in walk(data, [])]
    assert got == leaves


# --- RFC 5322 line length and line endings ---------------------------------------------

LONG_PIXEL = (
    '<img src="https://t.test/o/' + "A" * 150 + '.gif" width="1" height="1" alt="" '
    'style="display:block;position:absolute;width:1px;height:0">'
)


def long_lines(data: bytes) -> list[int]:
    return [len(line) for line in data.replace(b"\r\n", b"\n").split(b"\n") if len(line) > 998]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_8bit_lines_never_grow_past_998_bytes(eol: bytes) -> None:
    links = b"".join(
        b'<a class="b" href="https://a.test/%d">L\xc3\xa9%d</a> ' % (i, i) for i in range(16)
    )
    body = b"<html><body><p>" + links + b"</p>" + b"x" * (990 - len(links) - 35) + b"</body></html>"
    assert 900 < len(body) <= 998
    src = _single(b"text/html; charset=utf-8", b"8bit", body + b"\n").replace(b"\n", eol)
    res = instrument_eml(
        src, track=lambda u, p: "https://t.test/c/" + "T" * 100, pixel_html=LONG_PIXEL
    )
    assert len(res.links) == 16 and res.html_parts == 1
    assert long_lines(res.eml) == []
    # Breaks go only where they change nothing: inside tags, before an href
    # or right before the pixel.
    html = res.eml.split(eol + eol, 1)[1].decode()
    unbroken = html.replace(" " + eol.decode() + "href=", " href=").replace(eol.decode(), "")
    expected = (
        body.decode().replace("https://a.test/", "").replace("</body>", LONG_PIXEL + "</body>")
    )
    assert unbroken == re.sub(r'href="\d+"', 'href="https://t.test/c/' + "T" * 100 + '"', expected)


def test_an_original_long_line_is_not_made_longer_by_the_pixel() -> None:
    body = b"<html><body><p>" + b"y" * 1200 + b"</p></body></html>\n"
    res = instrument_eml(_single(b"text/html", b"8bit", body), track=track, pixel_html=LONG_PIXEL)
    # Theirs stays too long, but the pixel went on a line of its own.
    assert max(long_lines(res.eml)) <= len(body) - 1 and LONG_PIXEL.encode() + b"</body>" in res.eml


def test_quoted_printable_keeps_lf_only_messages_free_of_raw_cr() -> None:
    # An LF-only message whose QP body encodes CRLF line breaks as =0D.
    qp = b"<html><body>=0D\n<p>one</p>=0D\n<p>two</p>=0D\n</body></html>=0D\n"
    src = _single(b"text/html; charset=utf-8", b"quoted-printable", qp)
    res = instrument_eml(src, track=track, pixel_html=PIXEL)
    assert res.html_parts == 1 and b"\r" not in res.eml
    html = next(p for p in parts(res.eml) if p.get_content_type() == "text/html")
    assert html.get_payload(decode=True) == binascii.a2b_qp(qp).replace(
        b"</body>", PIXEL.encode() + b"</body>"
    )


def test_single_line_base64_is_wrapped_when_it_would_pass_998() -> None:
    html = b"<html><body>" + b"<p>words</p>" * 55 + b"</body></html>"
    b64 = base64.b64encode(html)
    assert 900 < len(b64) <= 998
    res = instrument_eml(
        _single(b"text/html", b"base64", b64 + b"\n"), track=track, pixel_html=LONG_PIXEL
    )
    assert res.html_parts == 1 and long_lines(res.eml) == []
    payload = next(p for p in parts(res.eml) if p.get_content_type() == "text/html")
    assert payload.get_payload(decode=True).count(LONG_PIXEL.encode()) == 1


def test_text_links_never_pass_998_bytes_nor_sign_merge_tags() -> None:
    long_line = b"see https://a.test/long " + b"w" * 900 + b"\n"
    text = long_line + b"short https://a.test/short and https://a.test/p?id={{ id }} there\n"
    src = _single(b"text/plain; charset=utf-8", b"8bit", text)
    res = instrument_eml(
        src, track=lambda u, p: "https://t.test/c/" + "T" * 100, pixel_html=PIXEL, text_links=True
    )
    assert long_lines(res.eml) == []
    reasons = {s.href: (s.reason, s.detail) for s in res.skipped}
    assert reasons["https://a.test/long"] == (Skip.LINE_TOO_LONG, "")
    assert reasons["https://a.test/p?id={{ id }}"] == (Skip.PLACEHOLDER, "{{ id }}")
    assert b"short https://t.test/c/" + b"T" * 100 + b" and" in res.eml
    assert b"https://a.test/long" in res.eml and b"{{ id }}" in res.eml
