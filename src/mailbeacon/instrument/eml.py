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

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from . import links as _links
from . import placeholders
from .html import Skipped, plan_links, sign_all, splice
from .links import Clicks, Skip
from .mime import Part, Text, encode_body, read_text, walk
from .pixel import Pixel

# A URL in text/plain runs to whitespace or a quote; a merge tag with spaces
# inside ({{ name }}, <%= x %>) stays part of it, so the placeholder rule sees it.
_TEXT_URL = re.compile(r"https?://(?:\{\{.*?\}\}|\{%.*?%\}|<%.*?%>|[^\s<>\"'`])+", re.I)
_TRAILING = ".,;:!?)]}'\u201d\u2019>"


@dataclass(slots=True)
class EmlResult:
    eml: bytes
    links: list[tuple[int, str]]
    skipped: list[Skipped] = field(default_factory=list)
    html_parts: int = 0  # how many HTML parts got a pixel
    notes: list[str] = field(default_factory=list)  # what was sloppy, parts left alone and why
    pixels: list[str] = field(default_factory=list)  # where each pixel went, per part
    no_pixel: str = ""  # why there is no pixel at all, when there is none


def _text_urls(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _TEXT_URL.finditer(text):
        # A "}" that closes a merge tag's "{" belongs to the URL.
        url = m.group(0).rstrip(_TRAILING.replace("}", "") if "{" in m.group(0) else _TRAILING)
        if "(" not in url:  # keep ")" only when it closes a "(" inside the URL
            url = url.rstrip(")")
        yield m.start(), m.start() + len(url), url


def instrument_eml(  # noqa: C901 - MIME walk with one branch per part kind; split, the byte offsets pass through helpers
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
    notes: list[str] = []
    parts = list(walk(data, notes))
    tracked: dict[str, str] = {}
    links: list[tuple[int, str]] = []
    refused: list[str] = []
    skipped: list[Skipped] = []
    edits: list[tuple[int, int, bytes]] = []
    html_parts = 0
    pixels: list[str] = []
    prefixes = _links.tracked_prefixes(tracked_prefixes)

    def text_of(part: Part) -> Text | None:
        got = read_text(data, part)
        if isinstance(got, str):
            notes.append(f"{part.describe()}: {got}, left alone")
            return None
        if got.note:
            notes.append(f"{part.describe()}: {got.note}")
        return got

    def put(part: Part, read: Text, text: str) -> None:
        original = data[part.body_start : read.end]
        raw = text.encode(read.codec, "surrogateescape")
        edits.append((part.body_start, read.end, encode_body(raw, part.encoding, original)))

    for part in parts:
        if part.content_type != "text/html" or part.attachment:
            continue
        if not part.blank_line and part.body_start == part.body_end:
            # Nothing after the headers, not even the blank line: inserting a
            # pixel would glue it onto the last header.
            notes.append(f"{part.describe()}: no body after its headers, left alone")
            continue
        got = text_of(part)
        if got is None:
            continue
        text, codec = got.text, got.codec
        plan = plan_links(text, clicks=clicks, tracked_prefixes=tracked_prefixes)
        sign_all(plan.urls, track, tracked, links, refused)
        # Markup the charset cannot hold goes in as character references.
        px = pixel_html.encode(codec, "xmlcharrefreplace").decode(codec)
        out, html_edits, placed = splice(plan, tracked, px, pixel, honeypot_url)
        if part.encoding not in ("quoted-printable", "base64"):
            out = fold(text, out, html_edits, got.codec)
        skipped += plan.skipped
        skipped += [
            Skipped(o.start, o.tag, text[o.start : o.end], Skip.REFUSED)
            for o in plan.occurrences
            if o.url in refused
        ]
        html_parts += 1
        if placed is not None:
            pixels.append(f"{part.describe()}: {placed.where}")
        put(part, got, out)

    if text_links:
        for part in parts:
            if part.content_type != "text/plain" or part.attachment:
                continue
            got = text_of(part)
            if got is None:
                continue
            text = got.text
            found = []
            for s, e, u in _text_urls(text):
                why = _links.decide(u, "", clicks=clicks, prefixes=prefixes, text_is_url=True)
                if why is None:
                    found.append((s, e, u))
                else:
                    tag = placeholders.find(u) if why is Skip.PLACEHOLDER else None
                    skipped.append(Skipped(s, "text", u, why, tag or ""))
            sign_all([u for _, _, u in found], track, tracked, links, refused)
            # A text line cannot be broken without showing the break: in a
            # 7bit/8bit part, a URL whose tracked form would push its line
            # past 998 bytes stays as it is.
            sent_as_is = part.encoding not in ("quoted-printable", "base64")
            growth: dict[int, int] = {}
            pieces: list[str] = []
            last = 0
            for s, e, u in found:
                if u not in tracked:
                    continue
                if sent_as_is:
                    start = text.rfind("\n", 0, s) + 1
                    end = text.find("\n", e)
                    line = text[start : len(text) if end < 0 else end].rstrip("\r")
                    grown = growth.get(start, 0) + len(tracked[u]) - (e - s)
                    if len(line.encode(got.codec, "surrogateescape")) + grown > MAX_LINE:
                        skipped.append(Skipped(s, "text", u, Skip.LINE_TOO_LONG))
                        continue
                    growth[start] = grown
                pieces += [text[last:s], tracked[u]]
                last = e
            if pieces:
                put(part, got, "".join(pieces) + text[last:])

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
    no_pixel = "" if pixels or not pixel_html else _why_no_pixel(parts)
    return EmlResult(b"".join(out_pieces), links, skipped, html_parts, notes, pixels, no_pixel)


MAX_LINE = 998  # RFC 5322 2.1.1: a line is at most 998 characters, CRLF excluded
_HREF_NAME = re.compile(r"href[\t\n\f\r ]*=[\t\n\f\r ]*\Z", re.I)


def fold(src: str, out: str, edits: list[tuple[int, int, str]], codec: str) -> str:
    """Break the lines our edits made longer than 998 bytes (a 7bit/8bit part
    is sent as it is; quoted-printable and base64 wrap by themselves).

    Breaks go only where a line break changes nothing: before a tracked
    link's ``href`` (inside the tag), and inside or right before the
    pixel's ``<img`` (the pixel sits where surrounding whitespace collapses).
    A line that was too long before stays as long, with our additions moved
    to lines of their own. ``edits`` are splice's, in ``src`` offsets.
    """
    eol = "\r\n" if "\r\n" in src else "\n"
    spots: list[int] = []
    shift = 0
    for start, end, new in edits:
        if start == end:  # the pixel (and honeypot) insertion
            at = start + shift
            spots.append(at)
            if new.startswith("<img"):
                spots.append(at + 4)
        else:
            m = _HREF_NAME.search(src, max(0, start - 40), start)
            if m is not None:
                spots.append(m.start() + shift)
        shift += len(new) - (end - start)
    if not spots or all(len(line) <= MAX_LINE // 4 for line in _long_candidates(out)):
        return out
    breaks: list[int] = []
    line_start = 0
    for line_end in [i for i, c in enumerate(out) if c == "\n"] + [len(out)]:
        stop = line_end - 1 if out[line_start:line_end].endswith("\r") else line_end
        pos = line_start
        while _bytes(out, pos, stop, codec) > MAX_LINE:
            inside = [o for o in spots if pos < o < stop]
            fits = [o for o in inside if _bytes(out, pos, o, codec) <= MAX_LINE]
            if fits:
                pos = fits[-1]
            elif inside:
                pos = inside[0]  # already too long before us: ours goes on a new line
            else:
                break
            breaks.append(pos)
        line_start = line_end + 1
    pieces, last = [], 0
    for b in breaks:
        pieces += [out[last:b], eol]
        last = b
    pieces.append(out[last:])
    return "".join(pieces)


def _long_candidates(text: str) -> list[str]:
    return [line for line in text.split("\n") if len(line) > MAX_LINE // 4]


def _bytes(text: str, start: int, end: int, codec: str) -> int:
    if end - start <= MAX_LINE // 4:
        return end - start  # no codec takes more than 4 bytes a character
    return len(text[start:end].encode(codec, "surrogateescape"))


def _why_no_pixel(parts: list[Part]) -> str:
    html = [p for p in parts if p.content_type == "text/html"]
    if not html:
        return "the message has no HTML part: a plain-text message cannot carry a pixel"
    if all(p.attachment for p in html):
        return "its only HTML is an attachment, which is not the message body"
    return "every HTML part was left alone (see the notes)"
