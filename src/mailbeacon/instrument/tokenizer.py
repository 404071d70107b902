"""Tag spans and attribute-value spans of HTML, without building a tree.

Why hand-written: the instrumenter must return the input byte for byte except
the href values it rewrites, so it needs the *offsets* of tags and attribute
values. ``html.parser`` gives tag positions but no attribute offsets; lxml,
html5lib and selectolax give none and re-serialise the document (pytracking's
``adapt_html`` goes through lxml). tree-sitter-html does give byte offsets,
but on the 60 KB / 30-link benchmark mail its parse took 1.06 ms and walking
its 4,400 nodes to the attributes another 0.56 ms, above our whole 1 ms
budget, and MSO comments would still need a special case (measured on this
machine: selectolax parses in 0.18 ms, but cannot say where an attribute is).
So: regexes that follow the WHATWG
tokenizer's states for tags, attributes, comments and raw text closely enough
for email, with possessive quantifiers (Python >= 3.11) so nothing backtracks.

Deviations from the HTML standard, all deliberate:
* ``<!--[if ...]>`` (an MSO conditional comment) is *not* skipped as a comment:
  Outlook renders its inside, where the VML buttons live, so we scan it.
* ``<![CDATA[`` runs to ``]]>`` (HTML would end it at the first ``>``); either
  way nothing inside is a rendered link.
* Character references in attribute values follow the HTML attribute rule
  (``&param=1`` stays as written) instead of plain ``html.unescape``, which
  would turn ``?a=1&param=2`` into ``?a=1¶m=2``.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.entities import html5 as _HTML5_ENTITIES
from typing import NamedTuple

WS = "\t\n\f\r "
_W = r"[\t\n\f\r ]"
# Attributes of one tag, as the WHATWG "before/after attribute name" and
# "attribute value (quoted/unquoted)" states read them. Possessive throughout.
ATTRS = (
    r"(?:[\t\n\f\r /]++"
    r"|[^\t\n\f\r />][^\t\n\f\r />=]*+"
    r"(?:" + _W + r"*+=" + _W + r"*+"
    r"(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|(?![\"'])[^\t\n\f\r >]*+))?+)*+"
)
# A tag (or quoted value) still open at the end of input runs to the end:
# HTML drops it ("eof-in-tag"), and letting it match keeps every '<' to one
# attempt. Without this, 20,000 unclosed "<p " took quadratic time.
_TAG_CLOSE = r"(?:>|\Z)"
# Elements whose content is text, not markup ("raw text" and "escapable raw
# text" in the standard). noscript is *not* here: mail clients run no scripts,
# so they render what is inside it.
RAW_TEXT = "script|style|textarea|title|xmp|iframe|noembed|noframes"

# One pass over "boring" markup inside the regex engine, stopping at the next
# token the instrumenter cares about. One Python iteration per interesting tag
# (~35 in a 60 KB newsletter) instead of per tag (~1,500): that is what keeps
# a 60 KB mail under 1 ms.
_HOT = r"(?:a|area|base|body|v:[a-z0-9_.-]+)"
_TAG_END = r"(?=[\t\n\f\r />])"  # a tag name ends at whitespace, / or >
# The order is what a 60-90 KB template needs most: text, end tags, start
# tags, then the rare rest. With comments and the 8 raw-text elements tried
# first, every plain tag failed 12 alternatives: 25% of the scan of a real
# 83 KB template (820 -> 612 us), 15% on the newsletter. Alternatives start
# differently (</x, <x, <!, <?), so the order changes no match; raw-text
# elements are kept out of the plain start tags and go to their own group.
_SKIP = [
    r"[^<]++",
    r"</(?!body" + _TAG_END + r")[a-z][^\t\n\f\r />]*+" + ATTRS + _TAG_CLOSE,  # end tags
    r"<(?!(?:" + _HOT + "|" + RAW_TEXT + ")" + _TAG_END + r")[a-z][^\t\n\f\r />]*+"
    + ATTRS + _TAG_CLOSE,  # start tags
    r"<!--(?!\[if)(?:-?>|.*?(?:--!?>|\Z))",  # comment; <!--> and <!---> are empty ones
    r"<!--\[if[^\]>]*+\]>",  # MSO conditional opener: skip it, scan its inside
    r"<!\[CDATA\[.*?(?:\]\]>|\Z)",
    r"<[!?][^>]*+(?:>|\Z)",  # doctype, <![endif]>, <?xml ...?>, bogus comments
    # One alternative per raw-text element, behind one lookahead: a
    # (?P=name) backreference inside this possessive loop trips a CPython 3.11
    # re bug ("span of capturing group is wrong"). The content runs to the
    # element's end tag (or the end), a "<" at a time.
    "<(?=(?:" + RAW_TEXT + ")" + _TAG_END + ")(?:"
    + "|".join(
        t + _TAG_END + ATTRS + r">[^<]*+(?:<(?!/" + t + r"[\t\n\f\r />])[^<]*+)*+"
        for t in RAW_TEXT.split("|")
    )
    + ")",
    r"</(?![a-z])[^>]*+(?:>|\Z)",  # </> and </ 3> are dropped / bogus comments
    r"<(?!" + _HOT + _TAG_END + r"|/body" + _TAG_END + ")",  # a stray '<' is text
]  # fmt: skip
_STOP = [
    r"(?P<tag><(?P<name>" + _HOT + ")" + _TAG_END + ATTRS + _TAG_CLOSE + ")",
    r"(?P<end></body" + _TAG_END + ATTRS + _TAG_CLOSE + ")",
    r"(?P<lt><)",  # an unclosed <a ... at the end: text
    r"\Z",
]
SCAN = re.compile("(?:" + "|".join(_SKIP) + ")*+(?:" + "|".join(_STOP) + ")", re.I | re.S)

# A start or end tag that ends with its own '>' (not one swallowed by an
# attribute value left open to the end of input).
CLOSED_TAG = re.compile(r"</?[a-z][^\t\n\f\r />]*+" + ATTRS + ">", re.I | re.S)

# Every token, for the lint (not on the hot path).
TOKEN = re.compile(
    r"(?P<comment><!--(?!\[if)(?:-?>|.*?(?:--!?>|\Z)))"
    r"|(?P<mso><!--\[if[^\]>]*+\]>)"
    r"|(?P<cdata><!\[CDATA\[.*?(?:\]\]>|\Z))"
    r"|(?P<bogus><[!?][^>]*+(?:>|\Z)|</(?![a-z])[^>]*+(?:>|\Z))"
    r"|(?P<start><(?P<sname>[a-z][^\t\n\f\r />]*+)" + ATTRS + _TAG_CLOSE + ")"
    r"|(?P<endtag></(?P<ename>[a-z][^\t\n\f\r />]*+)" + ATTRS + _TAG_CLOSE + ")"
    r"|(?P<text>[^<]++|<)",
    re.I | re.S,
)

ATTR = re.compile(
    r"([^\t\n\f\r />][^\t\n\f\r />=]*+)"
    r"(?:" + _W + r"*+=" + _W + r"*+(\"[^\"]*+\"|'[^']*+'|(?![\"'])[^\t\n\f\r >]*+))?+"
)


_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
_VALUE = r"(?:\"[^\"]*+\"|'[^']*+'|(?![\"'])[^\t\n\f\r >]*+)"
# The first href of a tag in one C-level match: skip whole attributes (so an
# "href=" inside another attribute's quoted value is never taken) up to the
# first attribute named href. Building every attribute in Python cost ~4 us
# per VML tag (8 attributes), a fifth of the per-mail budget.
HREF = re.compile(
    r"(?:[\t\n\f\r /]++|(?!href[\t\n\f\r /=>])" + _NAME
    + r"(?:" + _W + r"*+=" + _W + r"*+" + _VALUE + r")?+)*+"
    + r"href" + _W + r"*+=" + _W + r"*+(" + _VALUE + r")",
    re.I,
)  # fmt: skip


class Attr(NamedTuple):
    """One attribute. ``start``/``end`` cover the value token including its
    quotes (-1 when the attribute has no value); ``quote`` is ``"``, ``'`` or ``""``.
    A NamedTuple, not a dataclass: ~60 are built per 60 KB mail, and a frozen
    dataclass costs ~3x as much to create."""

    name: str
    value: str  # raw, still escaped
    start: int
    end: int
    quote: str


def _attr(m: re.Match[str], name: str) -> Attr:
    raw = m.group(2)
    if raw is None:
        return Attr(name, "", -1, -1, "")
    q = raw[:1] if raw[:1] in ('"', "'") else ""
    return Attr(name, raw[1:-1] if q else raw, m.start(2), m.end(2), q)


def attributes(src: str, start: int, end: int) -> list[Attr]:
    """Attributes of the tag ``src[start:end]`` (``start`` just past the tag
    name). Duplicates are kept in order; HTML uses the first."""
    return [_attr(m, m.group(1).lower()) for m in ATTR.finditer(src, start, end)]


def pick(src: str, start: int, end: int, names: frozenset[str]) -> dict[str, Attr]:
    """The first attribute of each wanted name in ``src[start:end]``."""
    out: dict[str, Attr] = {}
    for m in ATTR.finditer(src, start, end):
        name = m.group(1).lower()
        if name in names and name not in out:
            out[name] = _attr(m, name)
    return out


def first(attrs: list[Attr], name: str) -> Attr | None:
    for a in attrs:
        if a.name == name:
            return a
    return None


_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def _charref(m: re.Match[str]) -> str:
    ref = m.group(1)
    if ref[0] == "#" or ref[-1] == ";":
        return _html.unescape(m.group(0))
    # A named reference without ';' is decoded in an attribute only when it is
    # a whole legacy name followed by neither an alphanumeric nor '=' (HTML
    # "named character reference state"); our match already ate the alnums.
    nxt = m.string[m.end() : m.end() + 1]
    if ref in _HTML5_ENTITIES and nxt != "=":
        return _HTML5_ENTITIES[ref]
    return m.group(0)


def unescape_attr(value: str) -> str:
    """Decode character references the way a browser does in an attribute value."""
    if "&" not in value:
        return value
    plain = value.replace("&amp;", "&")
    if value.count("&") == value.count("&amp;"):
        return plain  # the common case, 10x faster than the regex
    return _CHARREF.sub(_charref, value)


_NEEDS_QUOTES = re.compile(r"[\t\n\f\r \"'=<>`]")


def attr_value(new: str, quote: str) -> str:
    """``new`` written as an attribute value token in the original quote style.

    Unquoted values stay unquoted unless the new value is empty or holds a
    character an unquoted value cannot (whitespace, quotes, = < > `); then it
    becomes double-quoted, the most common style in mail.
    """
    esc = new.replace("&", "&amp;")
    if quote == "'":
        return "'" + esc.replace("'", "&#39;") + "'"
    if quote == "" and esc and not _NEEDS_QUOTES.search(esc):
        return esc
    return '"' + esc.replace('"', "&quot;") + '"'


_TAGS = re.compile(r"<[^>]*>?")
_SPACES = re.compile(r"\s+")


def visible_text(markup: str) -> str:
    """Rough visible text of a markup fragment: tags dropped, entities decoded,
    whitespace collapsed. Good enough to ask 'does this text show a URL?'."""
    if "<" in markup:
        markup = _TAGS.sub(" ", markup)
    return _SPACES.sub(" ", _html.unescape(markup)).strip()


@dataclass(frozen=True, slots=True)
class Token:
    """``kind`` is one of comment, mso, cdata, bogus, start, end, text; ``name``
    is the lower-case tag name for start and end tags, else ""."""

    kind: str
    start: int
    end: int
    name: str


_KINDS = ("comment", "mso", "cdata", "bogus", "start", "endtag", "text")


def iter_tokens(src: str, pos: int = 0) -> Iterator[Token]:
    """Every token of ``src`` from ``pos`` (which must be in the data state) in
    order; raw-text element content is text."""
    n = len(src)
    while pos < n:
        m = TOKEN.match(src, pos)
        assert m is not None  # the text alternative matches any character
        kind = m.lastgroup or "text"
        if kind == "sname":
            kind = "start"
        elif kind == "ename":
            kind = "endtag"
        name = (m.group("sname") or m.group("ename") or "").lower()
        yield Token("end" if kind == "endtag" else kind, m.start(), m.end(), name)
        pos = m.end()
        if kind == "start" and name in _RAW_SET:
            close = raw_close(name).search(src, pos)
            stop = close.start() if close else n
            if stop > pos:
                yield Token("text", pos, stop, "")
            pos = stop


_RAW_SET = frozenset(RAW_TEXT.split("|"))
_RAW_CLOSE: dict[str, re.Pattern[str]] = {}


def raw_close(name: str) -> re.Pattern[str]:
    """Compiled ``</name`` finder, cached: also finds the end of an <a> or VML tag."""
    pat = _RAW_CLOSE.get(name)
    if pat is None:
        pat = _RAW_CLOSE[name] = re.compile(r"</" + re.escape(name) + r"[\t\n\f\r />]", re.I)
    return pat


_LINK_END: dict[str, re.Pattern[str]] = {}


def link_end(name: str) -> re.Pattern[str]:
    """Finds where a link's content ends: its end tag or the next link of the
    same kind (an <a> inside an <a> closes the first). Stopping at the next
    link keeps a mail full of unclosed links linear, not quadratic."""
    pat = _LINK_END.get(name)
    if pat is None:
        pat = _LINK_END[name] = re.compile(r"</?" + re.escape(name) + r"[\t\n\f\r />]", re.I)
    return pat
