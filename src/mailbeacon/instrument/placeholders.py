"""Unrendered merge tags in URLs: a link holding one is never signed.

A template goes through the sender's mail tool after us, which fills
``https://x.test/?id={{id}}`` per recipient. Signed now, the redirect would
lead every recipient to the literal ``{{id}}``: so such links are left alone
(reason ``placeholder``), and the lint names each one. Missing a placeholder
breaks a link; flagging a URL that only looks like one just leaves a link
untracked, so the patterns lean towards flagging.

The syntaxes, with where each is documented (checked 2026-11):

* ``{{x}}``, ``{{ x }}``, ``{{{x}}}``, ``{% tag %}``: Handlebars / Liquid / Twig
  (SendGrid dynamic templates, Klaviyo, HubSpot, Iterable, Customer.io,
  Postmark, MailerSend; Adobe Journey Optimizer shows
  ``https://www.adobe.com/users/{{profile.person.name.lastName}}``).
* ``{$x}``: MailerSend "simple personalization"
  (mailersend.com/help/how-to-use-variables). ``${x}``: Actito
  (``${firstName}``) and FreeMarker. ``{!x}``: Salesforce / Pardot
  (``{!Contact.FirstName}``). ``#{x}``: Ruby and Pug interpolation. ``{x}``:
  Sailthru (docs.sailthru.com/replacement-variables), Mautic
  ``{contactfield=email}``. Braces are not URL characters (RFC 3986), so any
  brace in a URL counts.
* ``*|FNAME|*``, ``*|FIRST_NAME|Friend|*``: Mailchimp / Mandrill merge tags.
* ``%%x%%``, ``%%=v(@x)=%%``: Salesforce Marketing Cloud personalization strings
  and AMPscript (developer.salesforce.com, "Personalization Strings and
  AMPscript"), Lyris/Delivra ``%%emailaddr%%``, GreenArrow ``%%subscriber_id%%``.
* ``%x%``: ActiveCampaign ``%FIRSTNAME%`` (activecampaign.design, Personalization),
  Mailgun recipient variables ``%recipient.unique_id%``
  (documentation.mailgun.com, Batch Sending), SendGrid's ``%name%`` wrappers.
* ``[[x]]``: GetResponse, Delivra ``[[FileID]]`` in view-online URLs, etrigue
  ``[[First Name]]``.
* ``[x]``, ``[x,fallback=]``: Campaign Monitor / Sendy ``[email]``,
  ``[Dateofbirth,fallback=]``; MailWizz ``[UNSUBSCRIBE_URL]``; Earnware
  ``[firstName, My Friend]``; Zoho ``$[LI:FIRSTNAME]$``. Only where a value
  starts (after ``/ = ? & #`` or at the start), so ``?filter[status]=1`` and
  IPv6 hosts ``[::1]`` are not taken.
* ``<%= x %>``: ERB, and Adobe Campaign
  (``http://myurl.com/a.php?name=<%=escapeUrl(recipient.lastName)%>``,
  experienceleague.adobe.com, "Track personalized links").
* ``-x-``: SendGrid legacy substitution tags
  (``http://example.com/customerOffer?id=-customerID-``, twilio.com/docs/sendgrid,
  "Substitution Tags"), only as a whole path segment or query value: a slug
  like ``/best-of-the-year`` is not one.
* ``#pf:x#``: HCL Unica Deliver (``?camCode=#pf:BUILTIN_CampaignCode#``);
  ``~~NAME~~``: older list managers.

Percent-encoded forms that HTML editors produce (``%7B%7Bx%7D%7D``,
``*%7CFNAME%7C*``, ``%5Bemail%5D``, ``%3C%25=x%25%3E``) count too.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NAME = r"[A-Za-z_][\w.:-]{0,80}"
_START = r"(?:^|(?<=[=/?&#$]))"  # where a path segment or a query value starts
# (text every match contains, its pattern). One pattern per syntax, tried
# only when that text is in the URL: one alternation of all of them cost
# 40 us per URL, 1.3 ms for a 30-link newsletter; this costs ~1 us.
_PATTERNS: list[tuple[str | tuple[str, ...], str]] = [
    ("{", r"[{}]"),  # {{x}}, {% %}, {$x}, ${x}, {!x}, #{x}, {x}
    ("}", r"[{}]"),
    ("%", r"%7[bd]"),  # percent-encoded braces
    ("|", r"\*\|.{0,120}?\|\*"),  # *|FNAME|*, *|FNAME|Friend|*
    ("%", r"\*%7c.{0,120}?%7c\*"),
    ("%", r"%%.{1,120}?%%"),  # %%FirstName%%, %%=v(@x)=%%
    # %FIRSTNAME%, %recipient.first%: not a percent-escape such as %E9t%E9 or
    # %C3%A9, unless all capitals (%DATE%).
    ("%", r"%(?![0-9a-f]{2})" + _NAME + "%|%(?-i:[A-Z_]{4,40})%"),
    ("[", r"\[\[.{1,120}?\]\]"),  # [[x]]
    ("%", r"%5b%5b.{1,120}?%5d%5d"),
    ("[", _START + r"\[" + _NAME + r"(?:,[^\]]{0,80})?\]"),  # [x], [x,fallback=]
    ("%", _START + r"%5b" + _NAME + r"(?:,[^\]]{0,80})?%5d"),
    ("<", r"<%.{0,200}?%>"),  # <%= x %>
    ("%", r"%3c%25.{0,200}?%25%3e"),
    # SendGrid -customerID-; "-" alone is in nearly every URL (slugs, hosts).
    (("=-", "/-", "?-", "&-", "#-", "$-"), _START + "-" + _NAME + r"-(?=$|[&/#?])"),
    ("#", r"#" + _NAME + "#"),  # #pf:x#
    ("~", r"~~.{1,80}?~~"),
]
_COMPILED = [((c,) if isinstance(c, str) else c, re.compile(p, re.I | re.S)) for c, p in _PATTERNS]


def _maybe(url: str) -> bool:
    """Whether ``url`` has a character some placeholder needs. Most URLs have
    none; a chain of ``in`` (memchr in C) clears them in ~0.5 us, where a
    character-class search took 1 us and one with the "-" cases 12 us."""
    return (
        "{" in url
        or "}" in url
        or "%" in url
        or "|" in url
        or "[" in url
        or "<" in url
        or "#" in url
        or "~" in url
        or url[:1] == "-"
        or "=-" in url
        or "/-" in url
        or "?-" in url
        or "&-" in url
        or "$-" in url
    )


# A campaign instruments one template per recipient, with the same URLs in
# each copy: cached, the check costs ~0.1 us after the first copy.
@lru_cache(maxsize=4096)
def find(url: str) -> str | None:
    """The first unrendered placeholder in ``url``, as written, or None."""
    if not _maybe(url):
        return None
    best: re.Match[str] | None = None
    for needles, pattern in _COMPILED:
        if any(n in url for n in needles) or (url[:1] == "-" and "-" in needles[0]):
            m = pattern.search(url)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
    if best is None:
        return None
    if best.group(0).lower() in ("{", "}", "%7b", "%7d"):
        return _brace_span(url, best.start())
    return best.group(0)


def _brace_span(url: str, at: int) -> str:
    """A lone brace match widened to the ``{...}`` around it, for the report."""
    start = url.rfind("{", 0, at + 1)
    start = at if start < 0 else start
    end = url.find("}", at)
    if end < 0:
        return url[start : start + 40]
    while url.startswith("}", end + 1):
        end += 1
    while start > 0 and url[start - 1] in "{$#!":
        start -= 1
    return url[start : end + 1]
