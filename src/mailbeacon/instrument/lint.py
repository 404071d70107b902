"""Deliverability lint: what in a mail is likely to hurt its inbox placement.

``lint(html_or_eml)`` returns findings, one per risk, each with a line number.
For a .eml the line is the line in the .eml file: exact for parts sent as
7bit/8bit; for a quoted-printable or base64 part it is the line where that
part's body starts, and the message gives the line inside the decoded part.

Codes (stable, for filtering in CLI output):

* ``domain-mismatch``: link text shows domain A, the href goes to domain B
  (the phishing signal filters score; a tracked link whose text is a URL is
  the classic case).
* ``tracking-domain-unaligned``: the tracking base URL's registrable domain
  differs from the From domain; a branded tracking domain fixes it.
* ``many-links``: more than 20 http(s) links. A heuristic, not a published
  threshold; newsletters over it are common, 1-to-1 mail almost never is.
* ``no-text-part``: a .eml with HTML but no text/plain alternative.
* ``image-only``: images but under 200 characters of visible text.
* ``url-shortener``: a link through a public shortener (bit.ly, t.co, ...),
  which spammers use to hide destinations and many lists block.
* ``hidden-pixel``: the tracking pixel is inside a display:none element (or
  is one); several clients then never load it.
* ``placeholder-in-link``: a link holds an unrendered merge tag (``{{id}}``,
  ``*|EMAIL|*``...); mailbeacon leaves such links untracked, one finding each.
* ``gmail-clipping``: over 100 KB of HTML. Gmail clips messages over 102 KB
  behind a "[Message clipped]" link, and a pixel at the bottom never loads.
* ``line-too-long`` (.eml): a line over 998 bytes, which RFC 5322 forbids;
  servers may break it anywhere or refuse the message.
* ``part-left-alone`` (.eml): an HTML part mailbeacon cannot rewrite safely
  (a charset Python has no codec for, base64 that does not decode): it gets
  no pixel and no tracked links.

``tracking-domain-unaligned`` is given only for mail that uses the tracking
domain (a tracked link or the pixel): an original not instrumented yet has
nothing to align. Domains are compared by registrable domain and a shown
domain must end in a public suffix (:mod:`.domains`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import links as _links
from . import placeholders
from .detect import Kind, decode_html, python_codec, sniff
from .domains import is_domain, registrable
from .mime import Part, decode_body, read_text, split_headers, walk
from .tokenizer import Attr, attributes, first, iter_tokens, unescape_attr, visible_text

MANY_LINKS = 20
IMAGE_ONLY_TEXT = 200  # visible characters below which a mail with images is "image-only"
_SHORTENERS = frozenset(
    "bit.ly tinyurl.com t.co goo.gl ow.ly is.gd buff.ly rebrand.ly cutt.ly shorturl.at "
    "tiny.cc bl.ink t.ly rb.gy v.gd s.id lnkd.in short.io soo.gd clck.ru qr.ae".split()
)
# Gmail clips a message whose HTML is over 102 KB; warn a little before, as
# tracked links add ~100 bytes each.
CLIP_WARN = 100 * 1024
MAX_LINE = 998  # RFC 5322 2.1.1, CRLF excluded
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_DOMAIN = re.compile(r"(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24})\b", re.I)


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    line: int
    code: str
    message: str


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class _Lines:
    """Offset -> 1-based line number."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


def _lint_html(html: str, tracking_host: str) -> tuple[list[tuple[int, str, str]], int]:  # noqa: C901 - one branch per lint finding, in the order they are reported
    """Findings as (offset, code, message) for one HTML document, and the
    offset of its first link to the tracking host (-1 if none)."""
    out: list[tuple[int, str, str]] = []
    stack: list[tuple[str, bool]] = []  # (tag name, hidden)
    link_count = 0
    images = 0
    text_chars = 0
    open_a: tuple[int, str] | None = None  # offset and href of the <a> we are in
    a_text: list[str] = []
    first_tracked = -1
    for tok in iter_tokens(html):
        if tok.kind == "text":
            chunk = html[tok.start : tok.end]
            if not (stack and stack[-1][0] in ("script", "style", "title")):
                text_chars += len(visible_text(chunk))
            if open_a is not None:
                a_text.append(chunk)
            continue
        if tok.kind == "end":
            if tok.name == "a" and open_a is not None:
                _check_mismatch(open_a, " ".join(a_text), tracking_host, out)
                open_a = None
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == tok.name:
                    del stack[k:]
                    break
            continue
        if tok.kind != "start":
            continue
        name = tok.name
        attrs = attributes(html, tok.start + 1 + len(name), tok.end - 1)
        style = _val(first(attrs, "style"))
        hidden = (bool(stack) and stack[-1][1]) or bool(_HIDDEN.search(style))
        hidden = hidden or first(attrs, "hidden") is not None
        href = _val(first(attrs, "href"))
        if href and (name in ("a", "area") or name.startswith("v:")):
            url = _links.clean_url(href)
            host = _host(url) if url.lower().startswith(("http://", "https://")) else ""
            if host:
                link_count += 1
                if link_count == MANY_LINKS + 1:
                    out.append((tok.start, "many-links", f"more than {MANY_LINKS} links"))
                if host in _SHORTENERS:
                    out.append((tok.start, "url-shortener", f"link through shortener {host}"))
                if tracking_host and host == tracking_host and first_tracked < 0:
                    first_tracked = tok.start
            tag = placeholders.find(url)
            if tag is not None:
                out.append((tok.start, "placeholder-in-link", f"{tag} in {url}: left untracked"))
            if name == "a":
                open_a = (tok.start, url)
                a_text = []
        if name == "img":
            src = _val(first(attrs, "src"))
            pixel = _is_pixel(attrs, src, tracking_host)
            if first_tracked < 0 and tracking_host and _host(src) == tracking_host:
                first_tracked = tok.start
            if pixel and hidden:
                out.append(
                    (tok.start, "hidden-pixel", "tracking pixel inside a display:none element")
                )
            if not pixel:
                images += 1
        if name not in _VOID and not html[tok.end - 2 : tok.end] == "/>":
            stack.append((name, hidden))
    if images and text_chars < IMAGE_ONLY_TEXT:
        out.append((0, "image-only", f"{images} image(s) and only {text_chars} characters of text"))
    size = len(html.encode("utf-8", "surrogateescape"))
    if size > CLIP_WARN:
        out.append((0, "gmail-clipping", _clipping(size)))
    return out, first_tracked


def _clipping(size: int) -> str:
    return (
        f"{size / 1024:.0f} KB of HTML: Gmail clips messages over 102 KB and a pixel at "
        "the bottom never loads there; trim it, or put the pixel at the top (--pixel top)"
    )


def _val(a: Attr | None) -> str:
    return unescape_attr(a.value) if a is not None else ""


def _is_pixel(attrs: list[Attr], src: str, tracking_host: str) -> bool:
    if tracking_host and _host(src) == tracking_host and "/o/" in src:
        return True
    w, h = _val(first(attrs, "width")).strip(), _val(first(attrs, "height")).strip()
    return w in ("0", "1", "1px") and h in ("0", "1", "1px")


def _check_mismatch(
    a: tuple[int, str], text: str, tracking_host: str, out: list[tuple[int, str, str]]
) -> None:
    offset, href = a
    shown = _DOMAIN.search(visible_text(text))
    host = _host(href)
    if shown is None or not host or not is_domain(shown.group(1)):
        return  # not a domain anyone would read as one (same-link-as-button.url)
    if registrable(shown.group(1)) != registrable(host):
        what = "the tracking domain" if host == tracking_host else host
        out.append(
            (offset, "domain-mismatch", f"link text shows {shown.group(1)} but goes to {what}")
        )


def _alignment(tracking_host: str, from_domain: str | None) -> str | None:
    if tracking_host and from_domain and registrable(tracking_host) != registrable(from_domain):
        return f"tracking domain {tracking_host} is not under the From domain {from_domain}"
    return None


def lint(
    html_or_eml: str | bytes,
    *,
    tracking_base_url: str | None = None,
    from_domain: str | None = None,
    kind: Kind | None = None,
) -> list[Finding]:
    """Deliverability risks in an HTML body or a whole .eml, in line order.

    ``kind`` says which it is; by default the content decides (:func:`.detect.sniff`).
    Bytes are best for a .eml: its parts may be in any charset.
    """
    tracking_host = _host(tracking_base_url) if tracking_base_url else ""
    data = (
        html_or_eml
        if isinstance(html_or_eml, bytes)
        else html_or_eml.encode("utf-8", "surrogateescape")
    )
    if (kind or sniff(data)) == "eml":
        return _lint_eml(data, tracking_host, from_domain)
    html = html_or_eml if isinstance(html_or_eml, str) else decode_html(html_or_eml)[0]
    lines = _Lines(html)
    found, first_tracked = _lint_html(html, tracking_host)
    msg = _alignment(tracking_host, from_domain)
    if msg and first_tracked >= 0:
        found.append((first_tracked, "tracking-domain-unaligned", msg))
    return sorted(Finding(lines.line(o), c, m) for o, c, m in found)


def _lint_eml(data: bytes, tracking_host: str, from_domain: str | None) -> list[Finding]:
    file_lines = _Lines(data.decode("latin-1"))
    parts = list(walk(data))
    findings: list[Finding] = []
    top, _, _ = split_headers(data, 0, len(data))
    if from_domain is None:
        m = re.search(r"@([A-Za-z0-9.-]+)", str(top.get("From", "")))
        from_domain = m.group(1).rstrip(".") if m else None
    html_parts = [p for p in parts if p.content_type == "text/html" and not p.attachment]
    has_text = any(p.content_type == "text/plain" and not p.attachment for p in parts)
    if html_parts and not has_text:
        findings.append(Finding(1, "no-text-part", "HTML only: add a text/plain alternative"))
    tracked = False
    for p in html_parts:
        part_findings, part_tracked = _lint_part(data, p, file_lines, tracking_host)
        findings += part_findings
        tracked = tracked or part_tracked
    msg = _alignment(tracking_host, from_domain)
    if msg and tracked:
        # The From header's line: where the sender would fix it.
        at = re.search(rb"^from:", data, re.I | re.M)
        findings.append(
            Finding(file_lines.line(at.start()) if at else 1, "tracking-domain-unaligned", msg)
        )
    for long in _LONG_LINE.finditer(data):
        n = len(long.group(0).rstrip(b"\r"))
        if n > MAX_LINE:
            findings.append(
                Finding(
                    file_lines.line(long.start()),
                    "line-too-long",
                    f"a line of {n:,} bytes: RFC 5322 allows {MAX_LINE}; servers may break it "
                    "anywhere or refuse the message",
                )
            )
    return sorted(findings, key=lambda f: (f.line, f.code))


# A line that may be too long: cheaper than splitting a 2 MB message into lines.
_LONG_LINE = re.compile(rb"^[^\n]{999,}", re.M)


def _lint_part(
    data: bytes, p: Part, file_lines: _Lines, tracking_host: str
) -> tuple[list[Finding], bool]:
    """Findings of one HTML part, and whether it uses the tracking domain."""
    first_line = file_lines.line(p.body_start)
    out = []
    got = read_text(data, p)
    if isinstance(got, str):
        out.append(
            Finding(
                first_line,
                "part-left-alone",
                f"{p.describe()}: {got}: it gets no pixel and no tracked links",
            )
        )
        codec = python_codec(p.charset) or "latin-1"
        html = decode_body(data[p.body_start : p.body_end], p.encoding).decode(codec, "replace")
    else:
        html = got.text
    lines = _Lines(html)
    found, first_tracked = _lint_html(html, tracking_host)
    for o, c, m in found:
        inner = lines.line(o)
        if p.encoding in ("quoted-printable", "base64"):
            out.append(
                Finding(first_line, c, f"{m} (line {inner} of the decoded {p.encoding} part)")
            )
        else:
            out.append(Finding(first_line + inner - 1, c, m))
    return out, first_tracked >= 0
