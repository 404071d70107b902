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

from mailbeacon.classify.useragent import BARE_WEBKIT_RE, UA_CACHE_SIZE, attribute, mail_client

__all__ = ["UAFacts", "UAKind", "ua_facts"]


class UAKind(enum.Enum):
    EMPTY = "empty"
    GMAIL_PREFETCH = "gmail_prefetch"
    BARE_MOZILLA = "bare_mozilla"
    GMAIL_PROXY = "gmail_proxy"
    MAILBOX_PROXY = "mailbox_proxy"  # Fastmail, HEY, Yahoo, Seznam
    SCANNER = "scanner"
    BOT = "bot"  # library, headless browser, link previewer, crawler
    BARE_WEBKIT = "bare_webkit"
    MAIL_CLIENT = "mail_client"
    BROWSER = "browser"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class UAFacts:
    kind: UAKind
    code: str  # reason code, e.g. "ua:gmail_image_proxy"
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
_MAILBOX_PROXIES: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"FastmailUA"), "ua:fastmail_proxy", 0.9),
    (re.compile(r"hey\.com/imageproxy"), "ua:hey_proxy", 0.9),
    (re.compile(r"YahooMailProxy"), "ua:yahoo_mail_proxy", 0.6),
    (re.compile(r"SeznamEmailProxy"), "ua:seznam_proxy", 0.6),
)

# Scanner tokens, section 4 (Braze, Crawler-Detect #552, crawler-user-agents).
_SCANNERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Google-Safety"), "ua:google_safety"),
    (re.compile(r"Barracuda Sentinel"), "ua:barracuda_sentinel"),
    (re.compile(r"virustotalcloud"), "ua:virustotal"),
)

# O9/C4: previewers, headless browsers, HTTP libraries, generic crawlers.
_BOTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"Slackbot|Slack-ImgProxy|BingPreview|MicrosoftPreview|SkypeUriPreview|"
            r"Yahoo Link Preview|facebookexternalhit|Twitterbot|LinkedInBot|Discordbot|"
            r"TelegramBot|WhatsApp/|Iframely|redditbot",
            re.I,
        ),
        "ua:link_preview",
    ),
    (re.compile(r"HeadlessChrome|PhantomJS|Puppeteer|Playwright", re.I), "ua:headless"),
    (
        re.compile(
            r"^(?:python-requests|python-urllib|python-httpx|Python/|aiohttp|httpx/|curl/|"
            r"Wget/|Go-http-client|okhttp|Java/|Apache-HttpClient|node-fetch|axios/|undici|"
            r"libwww-perl|LWP::|PHP/|GuzzleHttp|Ruby|Faraday|Dart/|Scrapy|PostmanRuntime|"
            r"HTTPie|Deno/|Bun/|got \(|reqwest)",
            re.I,
        ),
        "ua:library",
    ),
    # "bot" as a word end, but not the phone brand Cubot.
    (re.compile(r"(?<!cu)bot\b|crawler|spider|\bcrawl", re.I), "ua:crawler"),
)

_SAFARI = frozenset({"Safari", "Mobile Safari"})


@lru_cache(maxsize=UA_CACHE_SIZE)
def ua_facts(ua: str) -> UAFacts:
    """Classify a UA string once; later calls with the same string are a dict hit."""
    s = ua.strip()
    if not s:
        return UAFacts(UAKind.EMPTY, "ua:empty", 0.7, None, None, None)
    a = attribute(s)
    if _GMAIL_PREFETCH_RE.search(s):
        return UAFacts(UAKind.GMAIL_PREFETCH, "ua:gmail_prefetch", 0.9, "Gmail", None, None)
    if s == "Mozilla/5.0":
        return UAFacts(UAKind.BARE_MOZILLA, "ua:bare_mozilla", 0.6, "Apple Mail", None, None)
    if _GMAIL_PROXY_RE.search(s):
        return UAFacts(UAKind.GMAIL_PROXY, "ua:gmail_image_proxy", 0.9, "Gmail", None, None)
    for rx, code, conf in _MAILBOX_PROXIES:
        if rx.search(s):
            return UAFacts(UAKind.MAILBOX_PROXY, code, conf, a.client, None, None)
    for rx, code in _SCANNERS:
        if rx.search(s):
            return UAFacts(UAKind.SCANNER, code, 0.95, a.client, a.os, None)
    for rx, code in _BOTS:
        if rx.search(s):
            return UAFacts(UAKind.BOT, code, 0.9, a.client, a.os, None)
    if a.crawler:  # uap-core's own bot list (device family "Spider")
        return UAFacts(UAKind.BOT, "ua:crawler", 0.8, a.client, a.os, None)
    if BARE_WEBKIT_RE.match(s):
        return UAFacts(UAKind.BARE_WEBKIT, "ua:bare_webkit", 0.6, "Apple Mail", a.os, a.device)
    client = a.client
    if mail_client(s) is not None:
        return UAFacts(UAKind.MAIL_CLIENT, "ua:mail_client", 0.85, client, a.os, a.device)
    if s.startswith(("Mozilla/5.0 (", "Opera/")) and a.os is not None:
        return UAFacts(
            UAKind.BROWSER, "ua:browser", 0.6, client, a.os, a.device, safari=client in _SAFARI
        )
    return UAFacts(UAKind.UNKNOWN, "ua:unknown", 0.3, client, a.os, a.device)
