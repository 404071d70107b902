"""One message, many copies: read and plan it once, sign and splice per copy.

:func:`.eml.instrument_eml` walks the MIME tree, decodes every HTML part and
tokenizes it on each call. The relay makes one copy per recipient of the
same submission, and all of that is the same for every copy: only the
signed URLs and the pixel differ. ``prepare_eml`` does the shared work once
(walk, decode, :func:`.html.plan_links`); :meth:`PreparedEml.render` does
the per-copy rest (sign, splice, fold, re-encode, join) and returns exactly
what ``instrument_eml`` returns for the same arguments (HTML parts only: the
relay never tracks links in text/plain). On the 82 KB newsletter of
bench/relay.py a copy took a fifth of ``instrument_eml``'s time.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .eml import EmlResult, _why_no_pixel, fold
from .html import Plan, Skipped, plan_links, sign_all, splice
from .links import Clicks, Skip
from .mime import Part, Text, base64_head, encode_body, read_text, walk
from .pixel import Pixel

# Codecs that encode a string in pieces to the same bytes as in one go (no
# state, no byte-order mark): a copy's unchanged start is encoded once.
_PIECEWISE = ("utf-8", "ascii", "iso8859-", "cp125", "koi8-")


@dataclass(frozen=True, slots=True)
class _HtmlPart:
    part: Part
    read: Text
    plan: Plan
    original: bytes  # the encoded body that encode_body keeps the shape of
    # A base64 body's start before the first edit, encoded once for every
    # copy: first edit's offset -> (its bytes, n, base64 lines of bytes[:n]).
    heads: dict[int, tuple[bytes, int, bytes]] = field(default_factory=dict)

    def encode(self, out: str, first_edit: int) -> bytes:
        """``encode_body(out.encode(codec), ...)`` for a copy whose text is
        the part's own up to ``first_edit``: a newsletter's pixel or first
        link is far in, and re-encoding the whole body was half of a copy."""
        codec, encoding = self.read.codec, self.part.encoding
        if encoding != "base64" or not codecs.lookup(codec).name.startswith(_PIECEWISE):
            return encode_body(out.encode(codec, "surrogateescape"), encoding, self.original)
        head = self.heads.get(first_edit)
        if head is None:
            raw_head = self.read.text[:first_edit].encode(codec, "surrogateescape")
            head = (raw_head, *base64_head(raw_head, self.original))
            self.heads[first_edit] = head
        raw_head, n, text = head
        rest = raw_head[n:] + out[first_edit:].encode(codec, "surrogateescape")
        if not rest:
            return encode_body(raw_head, encoding, self.original)
        return text + encode_body(rest, encoding, self.original)


@dataclass(frozen=True, slots=True)
class PreparedEml:
    data: bytes
    parts: tuple[Part, ...]
    html: tuple[_HtmlPart, ...]  # the HTML parts a copy changes, in MIME order
    html_texts: tuple[str, ...]  # decoded text of every readable inline HTML part
    notes: tuple[str, ...]

    def render(
        self,
        *,
        track: Callable[[str, int], str],
        pixel_html: str,
        pixel: Pixel = "bottom",
        honeypot_url: str | None = None,
    ) -> EmlResult:
        """One copy: ``instrument_eml(data, track=..., pixel_html=..., ...)``."""
        tracked: dict[str, str] = {}
        links: list[tuple[int, str]] = []
        refused: list[str] = []
        skipped: list[Skipped] = []
        edits: list[tuple[int, int, bytes]] = []
        pixels: list[str] = []
        for hp in self.html:
            text, codec, plan = hp.read.text, hp.read.codec, hp.plan
            sign_all(plan.urls, track, tracked, links, refused)
            px = pixel_html.encode(codec, "xmlcharrefreplace").decode(codec)
            out, html_edits, placed = splice(plan, tracked, px, pixel, honeypot_url)
            if hp.part.encoding not in ("quoted-printable", "base64"):
                out = fold(text, out, html_edits, codec)
            skipped += plan.skipped
            skipped += [
                Skipped(o.start, o.tag, text[o.start : o.end], Skip.REFUSED)
                for o in plan.occurrences
                if o.url in refused
            ]
            if placed is not None:
                pixels.append(f"{hp.part.describe()}: {placed.where}")
            first = html_edits[0][0] if html_edits else len(text)
            edits.append((hp.part.body_start, hp.read.end, hp.encode(out, first)))
        view = memoryview(self.data)
        pieces: list[bytes | memoryview] = []
        last = 0
        for s, e, new in edits:
            pieces += [view[last:s], new]
            last = e
        pieces.append(view[last:])
        no_pixel = "" if pixels or not pixel_html else _why_no_pixel(list(self.parts))
        return EmlResult(
            b"".join(pieces), links, skipped, len(self.html), list(self.notes), pixels, no_pixel
        )


def prepare_eml(
    data: bytes,
    *,
    clicks: Clicks = "safe",
    tracked_prefixes: Sequence[str] = (),
    skipped: bool = True,
) -> PreparedEml:
    """The shared part of instrumenting ``data`` (raises what instrument_eml raises).

    ``skipped=False`` with ``clicks="off"``: the links are not even looked
    at, since none is tracked; each copy's bytes are the same, its
    ``skipped`` is empty (instead of every link as ``clicks_off``). That was
    40% of the reading of bench/relay.py's newsletter (0.4 of 1 ms), and
    the relay, which tracks only opens by default, never shows ``skipped``."""
    notes: list[str] = []
    parts = tuple(walk(data, notes))
    html: list[_HtmlPart] = []
    texts: list[str] = []
    for part in parts:
        if part.content_type != "text/html" or part.attachment:
            continue
        got = read_text(data, part)
        if isinstance(got, Text):
            texts.append(got.text)
        if not part.blank_line and part.body_start == part.body_end:
            notes.append(f"{part.describe()}: no body after its headers, left alone")
            continue
        if isinstance(got, str):
            notes.append(f"{part.describe()}: {got}, left alone")
            continue
        if got.note:
            notes.append(f"{part.describe()}: {got.note}")
        plan = plan_links(
            got.text,
            clicks=clicks,
            tracked_prefixes=tracked_prefixes,
            links=skipped or clicks != "off",
        )
        html.append(_HtmlPart(part, got, plan, data[part.body_start : got.end]))
    return PreparedEml(data, parts, tuple(html), tuple(texts), tuple(notes))
