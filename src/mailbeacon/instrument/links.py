"""Which links get tracked, and why the others are left alone.

One pure function, :func:`decide`, so the rules are testable as a table and
the CLI can explain every skipped link. The rules, in the order applied:

* ``clicks="off"`` tracks nothing (pixel only).
* ``data-mailbeacon="off"`` on the tag: the sender said no.
* empty, ``#fragment``, ``mailto:``, ``tel:``, ``sms:``, ``javascript:``,
  ``data:`` and every other non-http(s) scheme: not a web page we may redirect
  to (docs/design.md: only http and https destinations can ever be signed).
* relative links are resolved against ``<base href>``; without one they are
  left alone, since we cannot know where they point.
* a URL holding an unrendered merge tag (``{{id}}``, ``*|EMAIL|*``,
  ``%%x%%``...; :mod:`.placeholders`): the sender's mail tool fills it in
  later, and a signed copy would redirect to the literal tag.
* a link under a tracking base URL's ``/c/`` is already tracked.
* ``clicks="safe"`` (the default) also leaves:
  - links whose visible text shows a URL or a domain: rewriting
    ``<a href="https://x.com">x.com</a>`` makes the visible and actual domains
    differ, the classic phishing signal spam filters score;
  - unsubscribe / opt-out links: filters and mailbox providers look for a
    direct unsubscribe link, and scanners that "click" it must never
    unsubscribe anyone through us.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urljoin

from . import placeholders

Clicks = Literal["off", "safe", "all"]


class Skip(enum.StrEnum):
    """Why a link was left alone. The values appear in CLI/API output."""

    CLICKS_OFF = "clicks_off"
    OPT_OUT = "opt_out"  # data-mailbeacon="off"
    EMPTY = "empty"
    FRAGMENT = "fragment"
    MAILTO = "mailto"
    TEL = "tel"
    SMS = "sms"
    JAVASCRIPT = "javascript"
    DATA = "data"
    OTHER_SCHEME = "other_scheme"
    RELATIVE = "relative"  # relative link and no <base href>
    ALREADY_TRACKED = "already_tracked"
    VISIBLE_URL = "visible_url"  # safe mode: the text shows a URL or domain
    UNSUBSCRIBE = "unsubscribe"  # safe mode
    REFUSED = "refused"  # the signer refused the URL (e.g. longer than 4,096 bytes)
    PLACEHOLDER = "placeholder"  # an unrendered merge tag such as {{id}} or *|EMAIL|*
    LINE_TOO_LONG = "line_too_long"  # tracked, its 7bit/8bit text line would pass 998 bytes


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_NAMED_SCHEMES = {
    "mailto": Skip.MAILTO,
    "tel": Skip.TEL,
    "sms": Skip.SMS,
    "javascript": Skip.JAVASCRIPT,
    "data": Skip.DATA,
}
# The WHATWG URL parser strips leading/trailing C0 controls and spaces and
# removes tabs and newlines anywhere; "java\nscript:" is javascript:.
_STRIP = "".join(chr(c) for c in range(0x21))
_TAB_NL = re.compile(r"[\t\n\r]")

# Words that mark an unsubscribe / preference link, in the languages our users
# write in most (en, de, fr, es, it, nl, sv/da/no, pl, pt). Plain substrings of
# the lower-cased URL and text: a 26-way re.I alternation took 13 us per URL,
# 45 times per newsletter; `in` takes ~2 us for all of them.
_UNSUBSCRIBE = (
    "unsub", "opt-out", "optout", "opt_out", "opt out", "abmeld", "abbestell",
    "désabonn", "desabonn", "désinscri", "desinscri", "darse de baja", "dar de baja",
    "/baja", "cancelar la suscrip", "cancelar suscrip", "disiscriv", "cancella iscri",
    "uitschrijv", "afmeld", "avregistr", "avsluta prenum", "avmeld", "wypisz",
    "descadastr", "cancelar inscri",
)  # fmt: skip
# A domain-looking word: labels and a 2+ letter TLD. File names that look like
# domains (report.pdf) are excluded; a few real TLDs (.zip, .mov) are thus
# missed, which only means we track a link we could have left alone.
_DOMAIN_IN_TEXT = re.compile(
    r"(?:https?://|www\.)"
    r"|\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"\.(?!(?:pdf|jpe?g|png|gif|docx?|xlsx?|pptx?|txt|csv|js|html?)\b)[a-z]{2,24}\b",
    re.I,
)


def clean_url(value: str) -> str:
    """The URL a browser would follow for a decoded href value."""
    url = value.strip(_STRIP)
    if "\t" in url or "\n" in url or "\r" in url:
        url = _TAB_NL.sub("", url)
    return url


def shows_url(text: str) -> bool:
    """True when visible text shows a URL or a domain name."""
    return bool(text) and _DOMAIN_IN_TEXT.search(text) is not None


def is_unsubscribe(url: str, text: str) -> bool:
    """True when the URL or the visible text names unsubscribing / opting out."""
    hay = (url + " " + text).lower() if text else url.lower()
    for w in _UNSUBSCRIBE:  # a plain loop: any() over a generator costs ~2x
        if w in hay:
            return True
    return False


def tracked_prefixes(bases: Sequence[str]) -> tuple[str, ...]:
    """Lower-case ``<base>/c/`` prefixes for tracking base URLs. A base already
    ending in ``/c/`` is taken as the prefix itself."""
    out = []
    for b in bases:
        b = b.strip().lower()
        if not b:
            continue
        out.append(b if b.endswith("/c/") else b.rstrip("/") + "/c/")
    return tuple(out)


def resolve(url: str, base: str | None) -> tuple[str, Skip | None]:
    """Absolute http(s) URL for ``url`` (already cleaned), or why not."""
    if not url:
        return url, Skip.EMPTY
    if url[0] == "#":
        return url, Skip.FRAGMENT
    m = _SCHEME.match(url)
    if m is None:
        if base is None:
            return url, Skip.RELATIVE
        url = urljoin(base, url)
        m = _SCHEME.match(url)
        if m is None:
            return url, Skip.RELATIVE
    scheme = m.group(1).lower()
    if scheme in ("http", "https"):
        return url, None
    return url, _NAMED_SCHEMES.get(scheme, Skip.OTHER_SCHEME)


def decide(
    url: str,
    text: str,
    *,
    clicks: Clicks,
    prefixes: tuple[str, ...],
    opt_out: bool = False,
    text_is_url: bool = False,
) -> Skip | None:
    """None to track the absolute http(s) ``url``, else why not.

    ``text`` is the link's visible text ("" for <area>); ``text_is_url`` is set
    for URLs found in text/plain, where the URL *is* the text and the sender
    asked for them to be tracked, so the visible-URL rule does not apply.
    """
    if clicks == "off":
        return Skip.CLICKS_OFF
    if opt_out:
        return Skip.OPT_OUT
    if placeholders.find(url) is not None:
        return Skip.PLACEHOLDER
    if prefixes and url.lower().startswith(prefixes):
        return Skip.ALREADY_TRACKED
    if clicks == "safe":
        if not text_is_url and shows_url(text):
            return Skip.VISIBLE_URL
        if is_unsubscribe(url, text):
            return Skip.UNSUBSCRIBE
    return None
