"""Put a pixel and tracked links into HTML, changing nothing else.

The output equals the input byte for byte except: the rewritten href values
(each a value token, quotes included, listed in ``InstrumentResult.edits``),
the pixel, and the optional honeypot link inserted next to it. Nothing is
re-serialised, so MSO conditional comments, VML, entities, upper-case tags,
odd quoting and whitespace all survive.

Two ways to use it, because the signer needs a link's position before the
tracked URL exists:

* one call: ``instrument_html(html, track=..., pixel_html=...)``; ``track(url,
  position)`` is called once per distinct URL in document order;
* two steps: ``plan = plan_links(html)`` lists ``plan.links`` as
  ``(position, url)``; sign them; ``apply_plan(plan, {position: tracked_url},
  pixel_html=...)``. A position missing from the mapping is left alone.

Decisions:

* **One position per distinct destination.** The same URL twice (an Outlook
  VML button and its ``<a>`` fallback, a logo linked in header and footer) is
  one link with one position, so the API's ``links: [url]`` and the reports'
  "which link" agree, and a text/plain alternative can share positions.
* ``track`` may raise ``ValueError`` (``tokens.DestinationError`` is one) to
  refuse a URL: that link is left alone and takes no position.
* The URL passed to ``track`` is the decoded href (HTML character references
  resolved with the attribute rules, surrounding whitespace stripped, resolved
  against ``<base href>``); ``links`` reports the same string.
* Where the pixel goes is :mod:`.pixel`'s decision (before the last
  ``</body>``, or after ``<body>`` for ``"top"``, never inside anything left
  open); ``InstrumentResult.pixel`` says where and why. The honeypot goes
  right after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from . import links as _links
from . import placeholders
from .links import Clicks, Skip
from .pixel import Pixel, Placement, place
from .tokenizer import (
    CLOSED_TAG,
    HREF,
    SCAN,
    attr_value,
    link_end,
    pick,
    unescape_attr,
    visible_text,
)

_WANTED = frozenset({"data-mailbeacon"})

# Hidden from people in every client we know of (display:none; Outlook desktop
# ignores that but honours mso-hide:all), empty so there is nothing to click
# even where styles are stripped, out of the tab order (tabindex=-1) and out
# of the accessibility tree (aria-hidden). A scanner that fetches every href
# still fetches it, which is the point.
HONEYPOT_TEMPLATE = (
    '<a href="{url}" style="display:none;mso-hide:all;font-size:0;line-height:0;'
    'max-height:0;max-width:0;overflow:hidden;opacity:0;color:transparent" '
    'tabindex="-1" aria-hidden="true"></a>'
)


def honeypot_html(url: str) -> str:
    return HONEYPOT_TEMPLATE.format(url=url.replace("&", "&amp;").replace('"', "&quot;"))


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One trackable href: the value token ``html[start:end]`` (quotes included)."""

    start: int
    end: int
    quote: str
    url: str
    tag: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A link left alone: where (offset of its tag), what the href said, why;
    ``detail`` adds what was found (the placeholder) where there is more to say."""

    offset: int
    tag: str
    href: str
    reason: Skip
    detail: str = ""


@dataclass(slots=True)
class Plan:
    html: str
    occurrences: list[Occurrence]
    urls: list[str]  # distinct, in document order; position = index + 1
    skipped: list[Skipped]
    base: str | None
    body_open_end: int | None  # just after the first <body ...> tag
    body_close_start: int | None  # at the last </body>
    body_close_end: int | None  # just after it
    data_pos: int  # the last offset the scan knows to be outside any tag or comment

    def placement(self, pixel: Pixel) -> Placement:
        return place(
            self.html,
            pixel,
            body_open_end=self.body_open_end,
            body_close_start=self.body_close_start,
            body_close_end=self.body_close_end,
            data_pos=self.data_pos,
        )

    @property
    def links(self) -> list[tuple[int, str]]:
        return [(i, u) for i, u in enumerate(self.urls, 1)]


@dataclass(slots=True)
class InstrumentResult:
    html: str
    links: list[tuple[int, str]]  # (position, decoded destination URL)
    skipped: list[Skipped] = field(default_factory=list)
    # (start, end, replacement) in *input* offsets, ascending; an insertion has
    # start == end. Reverting these on the output gives the input back.
    edits: list[tuple[int, int, str]] = field(default_factory=list)
    pixel: Placement | None = None  # where the pixel went (None: no pixel asked for)


def plan_links(  # noqa: C901 - one branch per link kind the planner must leave alone
    html: str,
    *,
    clicks: Clicks = "safe",
    tracked_prefixes: Sequence[str] = (),
    links: bool = True,
) -> Plan:
    """Scan once: where the links are, which ones to track, where the body is.

    ``links=False``: only where the body is (all a pixel needs); no link is
    looked at, so the plan has no occurrences and nothing ``skipped``."""
    prefixes = _links.tracked_prefixes(tracked_prefixes)
    # (tag start, tag end, tag name, raw href, value start, value end, quote, opt-out)
    candidates: list[tuple[int, int, str, str, int, int, str, bool]] = []
    body_open_end: int | None = None
    body_close_start: int | None = None
    body_close_end: int | None = None
    data_pos = 0  # the last offset known to be outside tags, comments and raw text
    base: str | None = None
    pos = 0
    n = len(html)
    match = SCAN.match
    while pos < n:
        m = match(html, pos)
        assert m is not None  # every alternative is optional; \Z ends it
        pos = m.end()
        if m.group("tag") is not None:
            if html[pos - 1] != ">" or (pos == n and not CLOSED_TAG.fullmatch(m.group("tag"))):
                break  # a tag still open at the end of input: HTML drops it
            data_pos = pos
            name = m.group("name").lower()
            tag_start = m.start("tag")
            if name == "body":
                if body_open_end is None:
                    body_open_end = pos
                continue
            if not links:
                continue
            # Most hot tags without an href (v:fill, v:textbox) end here.
            low = m.group("tag").lower()
            if "href" not in low:
                continue
            hm = HREF.match(html, m.end("name"), pos - 1)
            if hm is None:
                continue
            value = hm.group(1)
            quote = value[:1] if value[:1] in ('"', "'") else ""
            raw = value[1:-1] if quote else value
            if name == "base":
                if base is None:
                    resolved, why = _links.resolve(_links.clean_url(unescape_attr(raw)), None)
                    base = resolved if why is None else None
                continue
            opt_out = False
            if "data-mailbeacon" in low:
                mb = pick(html, m.end("name"), pos - 1, _WANTED).get("data-mailbeacon")
                opt_out = mb is not None and unescape_attr(mb.value).strip().lower() == "off"
            candidates.append((tag_start, pos, name, raw, hm.start(1), hm.end(1), quote, opt_out))
        elif m.group("end") is not None:
            if html[pos - 1] == ">" and (pos < n or CLOSED_TAG.fullmatch(m.group("end"))):
                body_close_start, body_close_end = m.start("end"), pos
                data_pos = pos
        elif m.group("lt") is None:
            break

    occurrences: list[Occurrence] = []
    skipped: list[Skipped] = []
    position: dict[str, int] = {}
    urls: list[str] = []
    for tag_start, tag_end, name, raw, vstart, vend, quote, opt_out in candidates:
        url, why = _links.resolve(_links.clean_url(unescape_attr(raw)), base)
        if why is None:
            text = ""
            if clicks == "safe" and name != "area":
                close = link_end(name).search(html, tag_end)
                if close is not None:
                    text = visible_text(html[tag_end : close.start()])
            why = _links.decide(url, text, clicks=clicks, prefixes=prefixes, opt_out=opt_out)
        elif why is Skip.RELATIVE and placeholders.find(url) is not None:
            why = Skip.PLACEHOLDER  # "{{unsubscribe_url}}", "*|ARCHIVE|*": a whole-URL tag
        if why is not None:
            found = placeholders.find(url) if why is Skip.PLACEHOLDER else None
            skipped.append(Skipped(tag_start, name, raw, why, found or ""))
            continue
        if url not in position:
            position[url] = len(urls) + 1
            urls.append(url)
        occurrences.append(Occurrence(vstart, vend, quote, url, name))
    return Plan(
        html,
        occurrences,
        urls,
        skipped,
        base,
        body_open_end,
        body_close_start,
        body_close_end,
        data_pos,
    )


def splice(
    plan: Plan,
    tracked: Mapping[str, str],
    pixel_html: str,
    pixel: Pixel,
    honeypot_url: str | None,
) -> tuple[str, list[tuple[int, int, str]], Placement | None]:
    """Splice: one list of pieces, joined once. Also says where the pixel
    (and honeypot) went, None when there was nothing to insert."""
    edits: list[tuple[int, int, str]] = []
    for occ in plan.occurrences:
        new = tracked.get(occ.url)
        if new is not None:
            edits.append((occ.start, occ.end, attr_value(new, occ.quote)))
    insert = pixel_html + (honeypot_html(honeypot_url) if honeypot_url else "")
    placed: Placement | None = None
    if insert:
        placed = plan.placement(pixel)
        at = placed.offset
        # Never inside an href value: the pixel offsets are at tag boundaries.
        k = len(edits)
        while k and edits[k - 1][0] >= at:
            k -= 1
        edits.insert(k, (at, at, insert))
    src = plan.html
    pieces: list[str] = []
    last = 0
    for start, end, text in edits:
        pieces.append(src[last:start])
        pieces.append(text)
        last = end
    pieces.append(src[last:])
    return "".join(pieces), edits, placed


def apply_plan(
    plan: Plan,
    tracked: Mapping[int, str],
    *,
    pixel_html: str,
    pixel: Pixel = "bottom",
    honeypot_url: str | None = None,
) -> InstrumentResult:
    """Second step: write the signed URLs (by position) and the pixel."""
    by_url = {plan.urls[p - 1]: u for p, u in tracked.items() if 0 < p <= len(plan.urls)}
    out, edits, placed = splice(plan, by_url, pixel_html, pixel, honeypot_url)
    links = [(p, u) for p, u in plan.links if u in by_url]
    return InstrumentResult(out, links, list(plan.skipped), edits, placed)


def sign_all(
    urls: Sequence[str],
    track: Callable[[str, int], str],
    tracked: dict[str, str],
    links: list[tuple[int, str]],
    refused: list[str],
) -> None:
    """Call ``track`` once per URL not yet in ``tracked``, numbering from
    ``len(links) + 1``; a ``ValueError`` refuses the URL and uses no number."""
    for url in urls:
        if url in tracked or url in refused:
            continue
        position = len(links) + 1
        try:
            tracked[url] = track(url, position)
        except ValueError:
            refused.append(url)
            continue
        links.append((position, url))


def instrument_html(
    html: str,
    *,
    track: Callable[[str, int], str],
    pixel_html: str,
    clicks: Clicks = "safe",
    pixel: Pixel = "bottom",
    honeypot_url: str | None = None,
    tracked_prefixes: Sequence[str] = (),
) -> InstrumentResult:
    """Scan, sign (``track`` once per distinct URL, in order) and splice."""
    plan = plan_links(html, clicks=clicks, tracked_prefixes=tracked_prefixes)
    tracked: dict[str, str] = {}
    links: list[tuple[int, str]] = []
    refused: list[str] = []
    sign_all(plan.urls, track, tracked, links, refused)
    out, edits, placed = splice(plan, tracked, pixel_html, pixel, honeypot_url)
    skipped = list(plan.skipped)
    if refused:
        gone = set(refused)
        skipped += [
            Skipped(o.start, o.tag, html[o.start : o.end], Skip.REFUSED)
            for o in plan.occurrences
            if o.url in gone
        ]
    return InstrumentResult(out, links, skipped, edits, placed)
