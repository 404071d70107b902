"""MIME as mail clients read it: leaf parts and their byte ranges, body
transfer encodings, charsets. Nothing here writes a message; :mod:`.eml`
splices edits into the original bytes using these ranges.

The stdlib ``email`` package (compat32 policy: header values exactly as
written) parses each part's headers; the boundaries are walked here, because
``email`` re-serialises and this module must give byte offsets.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

_HEADERS = BytesHeaderParser(policy=compat32)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


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


def encode_body(raw: bytes, encoding: str, original: bytes) -> bytes:
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
