"""The tracking pixel: what it looks like and where it goes, so that it loads
in every client and changes nothing anyone can see.

Why this markup. An inline ``<img>`` after the last block starts a new line
box: with it, 122 of 178 renders of the 89 real templates (at 600 and
1,200 px) changed, the page growing by a blank band of one line (16-26 px)
or by 1 px. ``position:absolute`` takes the pixel out of the flow, and with
zero height it adds no scrollable overflow either (1 px tall, it added a row
at the bottom of most pages). Where a client strips ``position`` (Gmail),
``display:block`` still keeps it from opening a line: a zero-height block
(alone, though, it stopped a ``<p>``'s margin collapsing with the body's: an
8 px shift). ``width="1" height="1"`` stay as attributes for clients that
size images from attributes (Outlook's Word engine). Rendered in Chromium at
600 and 1,200 px, all 89 templates and the 55 HTML parts of 59 real messages
are pixel-identical before and after, pixel at the bottom or the top
(``bench/pixel_render.py``, docs/instrumenting.md). Never ``display:none``:
some clients do not load hidden images, which is the whole point of a pixel.

Where it goes (``pixel="bottom"``, the default): before the last ``</body>``.
If something a browser renders follows ``</body>`` (the parser moves it into
the body), after that instead, so the text keeps its line. With no
``</body>``, at the end of the document, but never inside something left
open there (an unclosed tag or attribute value, comment, ``<style>``,
``<title>``...): before it, where a browser still renders it. ``"top"``: right
after ``<body ...>`` (Gmail clips messages over 102 KB, and a pixel after the
clip never loads); with no ``<body>`` tag, at the bottom as above. Never
inside an Outlook conditional comment (``<!--[if mso]>``), which browsers
treat as a comment.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from typing import Literal

from .tokenizer import CLOSED_TAG, RAW_TEXT, iter_tokens, raw_close

Pixel = Literal["bottom", "top"]

PIXEL_STYLE = (
    "display:block;position:absolute;width:1px;height:0;border:0;margin:0;padding:0;overflow:hidden"
)


def pixel_img(src: str) -> str:
    """The pixel's markup for ``src`` (the open URL)."""
    return f'<img src="{_html.escape(src)}" width="1" height="1" alt="" style="{PIXEL_STYLE}" />'


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the pixel went: an offset in the input and, for people, why there."""

    offset: int
    where: str


_RAW = frozenset(RAW_TEXT.split("|"))
_NOT_RENDERED_START = frozenset({"html", "head", "body"})


def place(
    html: str,
    pixel: Pixel,
    *,
    body_open_end: int | None,
    body_close_start: int | None,
    body_close_end: int | None,
    data_pos: int,
) -> Placement:
    """Where the pixel goes in ``html`` (see the module docstring).

    The offsets come from the link scan: just after the first ``<body>`` tag,
    at and after the last ``</body>``, and the last offset the scan knows to
    be outside any tag, comment or raw text (so the tail can be read from
    there instead of from the start).
    """
    if pixel not in ("bottom", "top"):
        raise ValueError(f"pixel must be 'bottom' or 'top', not {pixel!r}")
    if pixel == "top" and body_open_end is not None:
        at = _outside_conditional(html, body_open_end)
        return Placement(at, "after <body>" if at == body_open_end else "before <!--[if")
    fallback = " (no <body> tag)" if pixel == "top" else ""
    if body_close_start is not None and body_close_end is not None:
        last = _tail(html, body_close_end)[1]
        if last is not None:
            return Placement(last, "after the content that follows </body>" + fallback)
        at = _outside_conditional(html, body_close_start)
        if at == body_close_start:
            return Placement(at, "before </body>" + fallback)
        return Placement(at, "before the <!--[if ...]> comment around </body>" + fallback)
    safe_end, open_thing = _tail(html, data_pos)[0]
    if open_thing:
        return Placement(safe_end, f"before {open_thing} left open at the end" + fallback)
    return Placement(safe_end, "at the end (no </body>)" + fallback)


def _outside_conditional(html: str, at: int) -> int:
    """``at``, or the start of the ``<!--[if ...]>`` comment it is inside."""
    opener = html.rfind("<!--[if", 0, at)
    if opener >= 0 and html.find("-->", opener, at) < 0:
        return opener
    return at


def _tail(html: str, pos: int) -> tuple[tuple[int, str], int | None]:
    """Read ``html`` from ``pos`` (in the data state) to the end.

    Returns ((where the document stops being safe to append to, what is left
    open there or ""), the end of the last rendered content or None).
    """
    last_rendered: int | None = None
    restart: int | None = pos
    while restart is not None:
        tokens, restart = iter_tokens(html, restart), None
        for tok in tokens:
            piece = html[tok.start : tok.end]
            if tok.kind == "text":
                if piece.strip():
                    last_rendered = tok.end
                continue
            if tok.kind == "mso":
                # To a browser "<!--[if mso]> ... <![endif]-->" is one comment.
                close = html.find("-->", tok.end)
                if close < 0:
                    return (tok.start, "an <!--[if ...]> comment"), last_rendered
                restart = close + 3
                break
            if not _closed(tok.kind, piece, tok.end == len(html)):
                return (tok.start, _OPEN.get(tok.kind, "markup").format(tok.name)), last_rendered
            if tok.kind == "start":
                if tok.name in _RAW and raw_close(tok.name).search(html, tok.end) is None:
                    return (tok.start, f"a <{tok.name}> element"), last_rendered
                if tok.name not in _NOT_RENDERED_START:
                    last_rendered = tok.end
    return (len(html), ""), last_rendered


_OPEN = {
    "comment": "a comment",
    "start": "a <{} tag",
    "end": "an end tag",
    "cdata": "a CDATA section",
}


def _closed(kind: str, piece: str, at_end: bool) -> bool:
    if kind == "comment":
        return piece.endswith(("-->", "--!>")) or piece in ("<!-->", "<!--->")
    if kind == "cdata":
        return piece.endswith("]]>")
    if kind in ("start", "end") and at_end:
        # At the end of input the tag pattern also matches an attribute value
        # that never closes (<a href="x>...</html>): only a full match with
        # its own '>' is a closed tag.
        return CLOSED_TAG.fullmatch(piece) is not None
    return piece.endswith(">")
