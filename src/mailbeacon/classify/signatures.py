"""What a User-Agent string alone says, as a kind plus a reason code.

Computed once per distinct UA (``lru_cache``): the rules then read a few
attributes, so a classify() call with a seen UA costs no regex at all.
Every token below is in classification.md with its source; the section is
given beside each table.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from mailbeacon.classify.reasons import Reason
from mailbeacon.classify.useragent import BARE_WEBKIT_RE, UA_CACHE_SIZE, attribute, mail_client

__all__ = ["UAFacts", "UAKind", "ua_facts"]


class UAKind(enum.Enum):
    EMPTY = "empty"
    GMAIL_PREFETCH = "gmail_prefetch"
    BARE_MOZILLA = "bare_mozilla"
    GMAIL_PROXY = "gmail_proxy"
    MAILBOX_PROXY = "mailbox_proxy"  # Fastmail, HEY, Yahoo, Seznam
    SCANNER = "scanner"
    FORGED = "forged"  # a browser that cannot exist: a scanner's made-up UA
    BOT = "bot"  # library, headless browser, link previewer, crawler
    BARE_WEBKIT = "bare_webkit"
    MAIL_CLIENT = "mail_client"
    BROWSER = "browser"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class UAFacts:
    kind: UAKind
    code: Reason  # e.g. Reason.UA_GMAIL_PROXY
    confidence: float  # of the UA signal alone
    client: str | None
    os: str | None
    device: str | None
    safari: bool = False  # Safari / Mobile Safari (C12: Private Relay browsing)


# Gmail's prefetch bot, one exact UA (SparkPost 2022-01-25; GMass), section 1.
_GMAIL_PREFETCH_RE = re.compile(
    r"Chrome/42\.0\.2311\.135 Safari/537\.36 Edge/12\.246 Mozilla/5\.0$"
)
_GMAIL_PROXY_RE = re.compile(r"GoogleImageProxy|ggpht\.com")  # section 1 rule

# Mailbox proxies that fetch on view, section 3: Fastmail and HEY are
# operator-documented (high); Yahoo and Seznam timing is undocumented (medium).
_MAILBOX_PROXIES: tuple[tuple[re.Pattern[str], Reason, float, str | None], ...] = (
    (re.compile(r"FastmailUA"), Reason.UA_FASTMAIL_PROXY, 0.9, None),
    (re.compile(r"hey\.com/imageproxy"), Reason.UA_HEY_PROXY, 0.9, None),
    (re.compile(r"YahooMailProxy"), Reason.UA_YAHOO_PROXY, 0.6, None),
    (re.compile(r"SeznamEmailProxy"), Reason.UA_SEZNAM_PROXY, 0.6, None),
)

# Scanner tokens, section 4 (Braze, Crawler-Detect #552, crawler-user-agents).
_SCANNERS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"Google-Safety"), Reason.UA_GOOGLE_SAFETY),
    (re.compile(r"Barracuda Sentinel"), Reason.UA_BARRACUDA),
    (re.compile(r"virustotalcloud"), Reason.UA_VIRUSTOTAL),
)

# O9/C4: previewers, headless browsers, HTTP libraries, generic crawlers.
_BOTS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (
        re.compile(
            r"Slackbot|Slack-ImgProxy|BingPreview|MicrosoftPreview|SkypeUriPreview|"
            r"Yahoo Link Preview|facebookexternalhit|Twitterbot|LinkedInBot|Discordbot|"
            r"TelegramBot|WhatsApp/|Iframely|redditbot",
            re.I,
        ),
        Reason.UA_LINK_PREVIEW,
    ),
    (re.compile(r"HeadlessChrome|PhantomJS|Puppeteer|Playwright", re.I), Reason.UA_HEADLESS),
    (
        re.compile(
            r"^(?:python-requests|python-urllib|python-httpx|Python/|aiohttp|httpx/|curl/|"
            r"Wget/|Go-http-client|okhttp|Java/|Apache-HttpClient|node-fetch|axios/|undici|"
            r"libwww-perl|LWP::|PHP/|GuzzleHttp|Ruby|Faraday|Dart/|Scrapy|PostmanRuntime|"
            r"HTTPie|Deno/|Bun/|got \(|reqwest)",
            re.I,
        ),
        Reason.UA_LIBRARY,
    ),
    # "bot" as a word end, but not the phone brand Cubot.
    (re.compile(r"(?<!cu)bot\b|crawler|spider|\bcrawl", re.I), Reason.UA_CRAWLER),
)

_SAFARI = frozenset({"Safari", "Mobile Safari"})


@lru_cache(maxsize=UA_CACHE_SIZE)
def ua_facts(ua: str) -> UAFacts:
    """Classify a UA string once; later calls with the same string are a dict hit."""
    s = ua.strip()
    if not s:
        return UAFacts(UAKind.EMPTY, Reason.UA_EMPTY, 0.7, None, None, None)
    a = attribute(s)
    if _GMAIL_PREFETCH_RE.search(s):
        return UAFacts(UAKind.GMAIL_PREFETCH, Reason.UA_GMAIL_PREFETCH, 0.9, "Gmail", None, None)
    if s == "Mozilla/5.0":
        return UAFacts(UAKind.BARE_MOZILLA, Reason.UA_BARE_MOZILLA, 0.6, "Apple Mail", None, None)
    if _GMAIL_PROXY_RE.search(s):
        return UAFacts(UAKind.GMAIL_PROXY, Reason.UA_GMAIL_PROXY, 0.9, "Gmail", None, None)
    for rx, code, conf, name in _MAILBOX_PROXIES:
        if rx.search(s):
            return UAFacts(UAKind.MAILBOX_PROXY, code, conf, name or a.client, None, None)
    for rx, code in _SCANNERS:
        if rx.search(s):
            return UAFacts(UAKind.SCANNER, code, 0.95, a.client, a.os, None)
    for rx, code in _BOTS:
        if rx.search(s):
            return UAFacts(UAKind.BOT, code, 0.9, a.client, a.os, None)
    if a.crawler:  # uap-core's own bot list (device family "Spider")
        return UAFacts(UAKind.BOT, Reason.UA_CRAWLER, 0.8, a.client, a.os, None)
    if BARE_WEBKIT_RE.match(s):
        return UAFacts(
            UAKind.BARE_WEBKIT, Reason.UA_BARE_WEBKIT, 0.6, "Apple Mail", a.os, a.device
        )
    client = a.client
    if mail_client(s) is not None:
        return UAFacts(UAKind.MAIL_CLIENT, Reason.UA_MAIL_CLIENT, 0.85, client, a.os, a.device)
    if s.startswith(("Mozilla/5.0 (", "Opera/")) and a.os is not None:
        return UAFacts(
            UAKind.BROWSER,
            Reason.UA_BROWSER,
            0.6,
            client,
            a.os,
            a.device,
            safari=client in _SAFARI,
        )
    return UAFacts(UAKind.UNKNOWN, Reason.UA_UNKNOWN, 0.3, client, a.os, a.device)
