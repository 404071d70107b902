"""Instrument a whole message (.eml): every HTML body, optionally the text ones.

Decisions:

* **Splice, do not regenerate.** The stdlib ``email`` package (compat32
  policy: it keeps header values exactly as written) parses each part's
  headers and tells content type, charset and transfer encoding; but the
  message is never re-serialised. We find each part's byte range by walking
  the MIME boundaries ourselves and replace only the body bytes of the parts
  we change. ``email.generator`` re-folds headers under policy.default and can
  rewrite line endings and boundaries even under compat32; splicing keeps all
  headers (top-level and per part), preamble, epilogue, boundaries and every
  untouched part byte-identical by construction.
* A changed part is re-encoded with its *original* transfer encoding
  (base64 keeps its line width and line endings; quoted-printable is wrapped
  at 76) and its *original* charset. Bytes the charset cannot decode survive
  (surrogateescape), so only the edits change the decoded text.
* Every ``text/html`` part that is not an attachment is instrumented, in
  multipart/alternative, related and mixed alike, and each gets one pixel:
  alternatives are shown one at a time. Attached messages (message/rfc822)
  and ``Content-Disposition: attachment`` parts are left alone.
* Positions are per distinct URL across the whole message: HTML parts first,
  in MIME order, then text/plain (``text_links=True``), so the HTML numbering
  equals :func:`instrument_html`'s and a URL in both alternatives has one
  position.
* ``text_links=True`` tracks http(s) URLs in text/plain parts (not
  attachments); the clicks mode still applies except the visible-URL rule
  (in text the URL *is* the visible text, and the sender asked for this).
* The result's ``eml`` is always ``bytes`` (a mail is bytes on the wire); a
  ``str`` input is encoded as UTF-8 first (surrogateescape, so text that came
  from a bytes decode with that handler round-trips).
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from . import links as _links
from .html import Pixel, Skipped, plan_links, sign_all, splice
from .links import Clicks

_HEADERS = BytesHeaderParser(policy=compat32)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TEXT_URL = re.compile(r"https?://[^\s<>\"'`]+", re.I)
_TRAILING = ".,;:!?)]}'\u201d\u2019>"


@dataclass(slots=True)
class Part:
    """A leaf part: ``data[body_start:body_end]`` is its encoded body."""

    headers: Message
    header_start: int
    body_start: int
    body_end: int
    content_type: str
    charset: str | None
    encoding: str  # transfer encoding, lower case; "7bit" when absent
    attachment: bool


@dataclass(slots=True)
class EmlResult:
    eml: bytes
    links: list[tuple[int, str]]
    skipped: list[Skipped] = field(default_factory=list)
    html_parts: int = 0  # how many HTML parts got a pixel
    notes: list[str] = field(default_factory=list)  # parts left alone, and why


def split_headers(data: bytes, start: int, end: int) -> tuple[Message, int]:
    if data.startswith(b"\r\n", start):
        return _HEADERS.parsebytes(b""), start + 2
    if data.startswith(b"\n", start):
        return _HEADERS.parsebytes(b""), start + 1
    m = _HEADER_END.search(data, start, end)
    body_start = m.end() if m else end
    head_end = m.start() + 1 if m else end
    return _HEADERS.parsebytes(data[start:head_end]), body_start


def walk(
    data: bytes, start: int = 0, end: int | None = None, digest: bool = False
) -> Iterator[Part]:
    """Leaf parts of the MIME entity ``data[start:end]``, in order."""
    end = len(data) if end is None else end
    headers, body_start = split_headers(data, start, end)
    if digest:
        headers.set_default_type("message/rfc822")
    ctype = headers.get_content_type()
    boundary = headers.get_boundary() if ctype.startswith("multipart/") else None
    if not boundary:
        cte = str(headers.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        disp = str(headers.get("Content-Disposition", "")).strip().lower()
        yield Part(
            headers,
            start,
            body_start,
            end,
            ctype,
            headers.get_content_charset(),
            cte,
            disp.startswith("attachment"),
        )
        return
    # RFC 2046: a delimiter is "--boundary" at the start of a line; the line
    # break before it belongs to the delimiter, not to the part before.
    delim = re.compile(rb"(?<=\n)--" + re.escape(boundary.encode("ascii", "replace"))
                       + rb"(--)?[ \t]*(?:\r?\n|\Z)")  # fmt: skip
    # body_start always follows a "\n" (the blank line ending the headers), and
    # the lookbehind sees bytes before ``pos``, so a body that opens with the
    # delimiter is found too.
    pos = body_start
    part_start: int | None = None
    for m in delim.finditer(data, pos, end):
        if part_start is not None:
            stop = m.start() - (2 if data[m.start() - 2 : m.start()] == b"\r\n" else 1)
            yield from walk(data, part_start, max(stop, part_start), ctype == "multipart/digest")
        if m.group(1):  # the close delimiter
            return
        part_start = m.end()


def decode_body(body: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            return binascii.a2b_base64(body.rstrip() + b"==")
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def _eol(body: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in body else b"\n"


def _encode_base64(raw: bytes, original: bytes) -> bytes:
    stripped = original.rstrip(b"\r\n \t")
    suffix = original[len(stripped) :]
    eol = _eol(original)
    lines = stripped.split(b"\n")
    # Keep the original line width (76 from most mailers, 72 or 64 from some);
    # a single unwrapped line stays unwrapped.
    width = len(lines[0].rstrip(b"\r")) if len(lines) > 1 else 0
    enc = binascii.b2a_base64(raw, newline=False)
    if width > 0:
        enc = eol.join(enc[i : i + width] for i in range(0, len(enc), width))
    return enc + suffix


_LINE = re.compile(rb"(\r\n|\n)")


def _encode_qp(raw: bytes, original: bytes) -> bytes:
    eol = _eol(original)
    out: list[bytes] = []
    for piece in _LINE.split(raw):
        if piece in (b"\r\n", b"\n"):
            out.append(piece)
        elif piece:
            # Per hard line: b2a_qp wraps at 76 with "=\n" soft breaks and
            # encodes trailing whitespace; we put back the original line ending.
            enc = binascii.b2a_qp(piece, quotetabs=False, istext=False, header=False)
            out.append(enc.replace(b"=\n", b"=" + eol) if eol != b"\n" else enc)
    return b"".join(out)


def _encode(raw: bytes, encoding: str, original: bytes) -> bytes:
    if encoding == "base64":
        return _encode_base64(raw, original)
    if encoding == "quoted-printable":
        return _encode_qp(raw, original)
    return raw


def codec_name(charset: str | None) -> str | None:
    try:
        return codecs.lookup(charset or "utf-8").name
    except LookupError:
        return None


def _text_urls(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _TEXT_URL.finditer(text):
        url = m.group(0).rstrip(_TRAILING)
        if "(" not in url:  # keep ")" only when it closes a "(" inside the URL
            url = url.rstrip(")")
        yield m.start(), m.start() + len(url), url


def instrument_eml(
    eml: str | bytes,
    *,
    track: Callable[[str, int], str],
    pixel_html: str,
    clicks: Clicks = "safe",
    pixel: Pixel = "bottom",
    honeypot_url: str | None = None,
    tracked_prefixes: Sequence[str] = (),
    text_links: bool = False,
) -> EmlResult:
    """Instrument every HTML part of a message; see the module docstring."""
    data = eml.encode("utf-8", "surrogateescape") if isinstance(eml, str) else eml
    parts = list(walk(data))
    tracked: dict[str, str] = {}
    links: list[tuple[int, str]] = []
    refused: list[str] = []
    skipped: list[Skipped] = []
    notes: list[str] = []
    edits: list[tuple[int, int, bytes]] = []
    html_parts = 0
    prefixes = _links.tracked_prefixes(tracked_prefixes)

    def text_of(i: int, part: Part) -> tuple[str, str] | None:
        codec = codec_name(part.charset)
        if codec is None:
            notes.append(f"part {i}: unknown charset {part.charset!r}, left alone")
            return None
        raw = decode_body(data[part.body_start : part.body_end], part.encoding)
        return raw.decode(codec, "surrogateescape"), codec

    def put(part: Part, text: str, codec: str) -> None:
        original = data[part.body_start : part.body_end]
        raw = text.encode(codec, "surrogateescape")
        edits.append((part.body_start, part.body_end, _encode(raw, part.encoding, original)))

    for i, part in enumerate(parts):
        if part.content_type != "text/html" or part.attachment:
            continue
        got = text_of(i, part)
        if got is None:
            continue
        text, codec = got
        plan = plan_links(text, clicks=clicks, tracked_prefixes=tracked_prefixes)
        sign_all(plan.urls, track, tracked, links, refused)
        # Markup the charset cannot hold goes in as character references.
        px = pixel_html.encode(codec, "xmlcharrefreplace").decode(codec)
        out, _ = splice(plan, tracked, px, pixel, honeypot_url)
        skipped += plan.skipped
        html_parts += 1
        put(part, out, codec)

    if text_links:
        for i, part in enumerate(parts):
            if part.content_type != "text/plain" or part.attachment:
                continue
            got = text_of(i, part)
            if got is None:
                continue
            text, codec = got
            found = [
                (s, e, u)
                for s, e, u in _text_urls(text)
                if _links.decide(u, "", clicks=clicks, prefixes=prefixes, text_is_url=True) is None
            ]
            sign_all([u for _, _, u in found], track, tracked, links, refused)
            pieces: list[str] = []
            last = 0
            for s, e, u in found:
                if u in tracked:
                    pieces += [text[last:s], tracked[u]]
                    last = e
            if pieces:
                put(part, "".join(pieces) + text[last:], codec)

    # Views, not slices: the untouched bytes (a 25 MB attachment) are copied
    # once, into the result, instead of twice.
    view = memoryview(data)
    out_pieces: list[bytes | memoryview] = []
    last = 0
    edits.sort(key=lambda ed: ed[0])  # HTML parts were done before text ones
    for s, e, new in edits:
        out_pieces += [view[last:s], new]
        last = e
    out_pieces.append(view[last:])
    return EmlResult(b"".join(out_pieces), links, skipped, html_parts, notes)
