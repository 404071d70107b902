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

from .detect import decode_html, python_codec

_HEADERS = BytesHeaderParser(policy=compat32)


@dataclass(slots=True)
class Part:
    """A leaf part: ``data[body_start:body_end]`` is its encoded body."""

    headers: Message
    header_start: int
    body_start: int
    body_end: int
    content_type: str
    charset: str | None
    encoding: str  # transfer encoding as read (see transfer_encoding); "7bit" when absent
    attachment: bool
    ordinal: int = 0  # 1-based, in document order: "part 3" in reports
    blank_line: bool = True  # a blank line ended the headers (else the body is empty or sloppy)

    def describe(self) -> str:
        charset = f"; charset={self.charset}" if self.charset else ""
        return f"part {self.ordinal} ({self.content_type}{charset})"


# RFC 5322 field name (printable ASCII but ':') and the colon.
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


def split_headers(data: bytes, start: int, end: int) -> tuple[Message, int, bool]:
    """Headers of the entity ``data[start:end]``, where its body starts, and
    whether a blank line ended the headers.

    As lenient as mail clients (and the stdlib's feedparser): the header block
    ends at the blank line, or at the first line that is neither a header
    field nor a continuation (the body then starts on that line, so nothing
    we insert is ever glued onto a header), or at the end of the entity. An
    mbox ``From `` line may come first.
    """
    pos = start
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        if data[pos:line_end] in (b"\n", b"\r\n"):
            return _HEADERS.parsebytes(data[start:pos]), line_end, True
        first = data[pos : pos + 1]
        if first in (b" ", b"\t"):
            if pos == start:
                break  # a continuation of nothing: not a header block
        elif _FIELD.match(data, pos, line_end) is None and not (
            pos == start == 0 and data.startswith(b"From ", pos)
        ):
            break
        pos = line_end
    return _HEADERS.parsebytes(data[start:pos]), pos, False


def transfer_encoding(headers: Message) -> str:
    """The Content-Transfer-Encoding as clients read it: ``quoted printable``
    and ``quoted-printable;`` are quoted-printable, ``8bits`` is 8bit (all seen
    in real mail); other unknown values are returned as written."""
    cte = str(headers.get("Content-Transfer-Encoding", "7bit")).split(";")[0]
    cte = "-".join(cte.strip().lower().replace("_", " ").split())
    if cte in ("7bits", "8bits"):
        return cte[:-1]
    return cte or "7bit"


def walk(data: bytes, notes: list[str] | None = None) -> Iterator[Part]:
    """Leaf parts of the message ``data``, in order, numbered from 1.

    ``notes`` collects what was sloppy and how it was read (a multipart with
    no closing boundary, headers with no blank line after them).
    """
    for i, part in enumerate(_walk(data, 0, len(data), False, notes), 1):
        part.ordinal = i
        if not part.blank_line and notes is not None:
            notes.append(f"part {i} ({part.content_type}): no blank line after its headers")
        yield part


def _walk(
    data: bytes, start: int, end: int, digest: bool, notes: list[str] | None
) -> Iterator[Part]:
    headers, body_start, blank = split_headers(data, start, end)
    if digest:
        headers.set_default_type("message/rfc822")
    ctype = headers.get_content_type()
    boundary = headers.get_boundary() if ctype.startswith("multipart/") else None
    if not boundary:
        disp = str(headers.get("Content-Disposition", "")).strip().lower()
        yield Part(
            headers,
            start,
            body_start,
            end,
            ctype,
            headers.get_content_charset(),
            transfer_encoding(headers),
            disp.startswith("attachment"),
            blank_line=blank,
        )
        return
    # RFC 2046: a delimiter is "--boundary" at the start of a line; the line
    # break before it belongs to the delimiter, not to the part before.
    # The LF before it is part of the pattern, not a lookbehind: a literal
    # prefix lets the regex engine skip to each candidate (a lookbehind made
    # it try every byte of the body: 0.6 ms of an 82 KB message's walk).
    # Its own line break is a lookahead, so the LF that ends one delimiter
    # line is still there to begin the next (an empty part).
    delim = re.compile(rb"\n--" + re.escape(boundary.encode("ascii", "replace"))
                       + rb"(--)?[ \t]*(?=\r?\n|\Z)")  # fmt: skip
    # body_start always follows a "\n" (the end of the header block): the
    # search starts on it, so a body that opens with the delimiter is found too.
    part_start: int | None = None
    sub_digest = ctype == "multipart/digest"
    for m in delim.finditer(data, max(body_start - 1, 0), end):
        at = m.start() + 1  # where "--" begins
        if part_start is not None:
            stop = at - (2 if data[at - 2 : at] == b"\r\n" else 1)
            yield from _walk(data, part_start, max(stop, part_start), sub_digest, notes)
        if m.group(1):  # the close delimiter
            return
        part_start = m.end() + (
            2 if data[m.end() : m.end() + 2] == b"\r\n" else 1 if m.end() < end else 0
        )
    if part_start is None:
        if notes is not None:
            notes.append(f"{ctype} at byte {start}: no boundary line, its body is left alone")
        return
    # No close delimiter (6 of 122 real messages): mail clients and the stdlib
    # show the last part up to the end of the enclosing entity, and so do we.
    if notes is not None:
        notes.append(f"{ctype} at byte {start}: no closing boundary, last part read to the end")
    yield from _walk(data, part_start, end, sub_digest, notes)


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


def _base64_shape(original: bytes) -> tuple[int, bytes, bytes]:
    """(line width, 0: one unwrapped line; line ending; what follows the last line)."""
    stripped = original.rstrip(b"\r\n \t")
    end = original.find(b"\n")
    width = len(original[:end].rstrip(b"\r")) if 0 <= end < len(stripped) else 0
    return width, _eol(original), original[len(stripped) :]


def _encode_base64(raw: bytes, original: bytes) -> bytes:
    width, eol, suffix = _base64_shape(original)
    enc = binascii.b2a_base64(raw, newline=False)
    # Keep the original line width (76 from most mailers, 72 or 64 from some).
    # A single unwrapped line stays unwrapped while it fits a mail line;
    # past 998 bytes (RFC 5322) it is wrapped at 76 (RFC 2045).
    if width > 998 or (width == 0 and len(enc) > 998):
        width = 76
    if width > 0:
        enc = eol.join([enc[i : i + width] for i in range(0, len(enc), width)])
    return enc + suffix


def base64_head(head: bytes, original: bytes) -> tuple[int, bytes]:
    """The part of ``encode_body(raw, "base64", original)`` that every ``raw``
    beginning with ``head`` shares: (n, text), ``text`` the whole lines (each
    with its line ending) that encode ``head[:n]``. For such a ``raw`` longer
    than ``n``, ``encode_body(raw, ...) == text + encode_body(raw[n:], ...)``.
    (0, b"") when lines do not hold whole 3-byte groups (a single unwrapped
    line, or a width that is not a multiple of 4)."""
    width, eol, _suffix = _base64_shape(original)
    if not 0 < width <= 998 or width % 4:
        return 0, b""
    per_line = width // 4 * 3
    n = len(head) // per_line * per_line
    if not n:
        return 0, b""
    enc = binascii.b2a_base64(head[:n], newline=False)
    return n, eol.join([enc[i : i + width] for i in range(0, len(enc), width)]) + eol


def _encode_qp(raw: bytes, original: bytes) -> bytes:
    """Quoted-printable with the body's own line ending. Hard line breaks are
    the body's line ending only: any other CR or LF in the text (an LF-only
    message whose text has CRLF, written =0D) is encoded, never sent raw."""
    eol = _eol(original)
    out: list[bytes] = []
    for i, piece in enumerate(raw.split(eol)):
        if i:
            out.append(eol)
        if piece:
            # b2a_qp wraps at 76 with "=\n" soft breaks, encodes trailing
            # whitespace and (istext=False) every CR and LF.
            enc = binascii.b2a_qp(piece, quotetabs=False, istext=False, header=False)
            out.append(enc.replace(b"=\n", b"=" + eol) if eol != b"\n" else enc)
    return b"".join(out)


def encode_body(raw: bytes, encoding: str, original: bytes) -> bytes:
    if encoding == "base64":
        return _encode_base64(raw, original)
    if encoding == "quoted-printable":
        return _encode_qp(raw, original)
    return raw


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_REWRITABLE = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})


@dataclass(frozen=True, slots=True)
class Text:
    """A part's body decoded: ``text.encode(codec, "surrogateescape")`` gives
    the decoded bytes of ``data[part.body_start:end]`` back exactly. ``end``
    is the body's end, or where text a list server appended to a base64 body
    begins (kept as it is)."""

    text: str
    codec: str
    end: int
    note: str = ""


# Base64 lines, each ended by LF (one regex call for the whole run of them:
# a match per 76-byte line was half of the relay's read of an 82 KB message),
# and a last line the body may end without.
_B64_LINES = re.compile(rb"(?:[A-Za-z0-9+/]*={0,2}[ \t]*\r?\n)*")
_B64_LAST = re.compile(rb"[A-Za-z0-9+/]*={0,2}[ \t]*\r?\Z")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# As many CRs as LFs, alternating, and none without its LF right after: CRLF
# line ends. A regex that jumps from CR to CR: 31 us on 80 KB, where
# counting b"\r\n" took 72 (CPython's two-byte count is slow).
_CR_ALONE = re.compile(rb"\r(?!\n)")


def _plain_base64(body: bytes) -> bytes | None:
    """The base64 of a body that is nothing but base64 lines (what the
    regexes above accept whole), line ends removed; None for any other body.

    What nearly every mailer writes: the alphabet, LF or CRLF line ends, and
    at most two "=" at the very end. Checked with C-speed passes over the
    body: the regexes step through it a byte at a time (0.3 ms for the
    bench's 80 KB of base64, read once per relayed message)."""
    rest = body.translate(None, _B64_ALPHABET)  # the line ends and any "="
    ends = rest.replace(b"=", b"")
    if ends == b"\n" * len(ends):
        pass
    elif ends != b"\r\n" * (len(ends) // 2) or _CR_ALONE.search(body):
        return None  # a CR that is not a CRLF's, spaces, or something else
    stripped = body.rstrip(b"\r\n")
    pad = len(stripped) - len(stripped.rstrip(b"="))
    if pad > 2 or pad != len(rest) - len(ends):
        return None  # an "=" before the end
    return body.translate(None, b"\r\n")


def read_text(data: bytes, part: Part) -> Text | str:
    """The text of a part we may rewrite, or why it must be left alone.

    Charset: a byte-order mark wins (as in the Encoding Standard's decode),
    then the part's charset label read like a browser would
    (:func:`.detect.python_codec`: ``x-mac-cyrillic`` is Python's mac-cyrillic);
    an HTML part without one is read like an HTML file (UTF-8, its ``<meta
    charset>``). A label Python has no codec for, a codec that does not give
    the same bytes back (stateful ISO-2022 escapes, for one) or a body that
    does not decode cleanly is a reason to leave the part alone: never damage
    what cannot be read.
    """
    end = part.body_end
    body = data[part.body_start : end]
    note = ""
    if part.encoding not in _REWRITABLE and part.encoding.startswith(("x-uu", "uu")):
        return f"transfer encoding {part.encoding} is not rewritten"
    if part.encoding == "base64":
        # Mailman and other list servers append a plain-text footer to a
        # single-part base64 body. Rewrite the base64 lines, keep the rest.
        compact = _plain_base64(body)
        if compact is None:
            lines = _B64_LINES.match(body)
            pos = lines.end() if lines else 0
            if _B64_LAST.match(body, pos):
                pos = len(body)
            if pos < len(body):
                note = f"{len(body) - pos} bytes of text after its base64 kept as they are"
                end = part.body_start + pos
            compact = b"".join(body[:pos].split())
        try:
            raw = binascii.a2b_base64(compact, strict_mode=True)
        except binascii.Error:
            return "its base64 does not decode cleanly"
    else:
        raw = decode_body(body, part.encoding)
    codec: str | None = next((c for bom, c in _BOMS if raw.startswith(bom)), None)
    if codec is None:
        if part.charset is None and part.content_type == "text/html":
            text, codec = decode_html(raw)
            return Text(text, codec, end, note)
        codec = python_codec(part.charset)
        if codec is None:
            return f"unknown charset {part.charset!r}"
    text = raw.decode(codec, "surrogateescape")
    if text.encode(codec, "surrogateescape") != raw:
        return f"charset {part.charset or codec} does not give the same bytes back"
    return Text(text, codec, end, note)
