"""What a User-Agent string alone says, as a kind plus a reason code.

Computed once per distinct UA (``lru_cache``): the rules then read a few
attributes, so a classify() call with a seen UA costs no regex at all.
Every token below is in docs/classification.md with its source (the section is
given beside each table) or cites its source beside it. Tokens match
case-insensitively: a logging proxy lower-cased the Gmail proxy's UA in
gshutler/useragent#33, and vendors vary their capitalisation.
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
    MAILBOX_PROXY = "mailbox_proxy"  # Fastmail, HEY, Yahoo, Seznam, Rambler, UkrNet
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
    r"Chrome/42\.0\.2311\.135 Safari/537\.36 Edge/12\.246 Mozilla/5\.0$", re.I
)
_GMAIL_PROXY_RE = re.compile(r"GoogleImageProxy|ggpht\.com", re.I)  # section 1 rule

# Mailbox proxies that fetch on view, section 3: Fastmail and HEY are
# operator-documented (high); Yahoo and Seznam timing is undocumented
# (medium). Rambler ("RamblerMail Image Proxy") and UkrNet ("UkrNet Mail
# Proxy", secureurl.fwdcdn.com) are in matomo-org/device-detector's bots list,
# timing undocumented (medium). Mail.ru, Yandex, Naver, QQ and GMX/Web.de
# were searched for: no public UA of their image proxies was found (gap).
_MAILBOX_PROXIES: tuple[tuple[re.Pattern[str], Reason, float, str | None], ...] = (
    (re.compile(r"FastmailUA", re.I), Reason.UA_FASTMAIL_PROXY, 0.9, None),
    (re.compile(r"hey\.com/imageproxy", re.I), Reason.UA_HEY_PROXY, 0.9, None),
    (re.compile(r"YahooMailProxy", re.I), Reason.UA_YAHOO_PROXY, 0.6, None),
    (re.compile(r"SeznamEmailProxy", re.I), Reason.UA_SEZNAM_PROXY, 0.6, None),
    (re.compile(r"RamblerMail/.*ImageProxy", re.I), Reason.UA_WEBMAIL_PROXY, 0.6, "Rambler Mail"),
    (
        re.compile(r"secureurl\.fwdcdn\.com|mail\.ukr\.net proxy", re.I),
        Reason.UA_WEBMAIL_PROXY,
        0.6,
        "UkrNet Mail",
    ),
)

# Scanner tokens, section 4 (Braze, Crawler-Detect #552, crawler-user-agents);
# Kaspersky's link resolver: device-detector bots.yml "Kaspersky Lab CFR link
# resolver" (a security product checking links, so a scanner, not a preview).
_SCANNERS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"Google-Safety", re.I), Reason.UA_GOOGLE_SAFETY),
    (re.compile(r"Barracuda Sentinel", re.I), Reason.UA_BARRACUDA),
    (re.compile(r"virustotalcloud", re.I), Reason.UA_VIRUSTOTAL),
    (re.compile(r"Kaspersky Lab CFR link resolver", re.I), Reason.UA_LINK_RESOLVER),
)

# O9/C4: previewers, monitors, headless browsers, HTTP libraries, crawlers.
# Previewers beyond section 4: ViberUrlDownloader, Embedly, Mastodon's link
# cards (http.rb ... Mastodon/), Snap URL Preview, Google Web Preview
# (device-detector bots.yml fixtures). Monitors: device-detector's "Site
# Monitor" category (UptimeRobot, Pingdom, StatusCake, Better Uptime,
# Site24x7, Datadog, Elastic Synthetics). PowerShell's Invoke-WebRequest
# default UA ends "WindowsPowerShell/5.1..." (learn.microsoft.com) and
# "PowerShell/7..." on PowerShell 7.
_BOTS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (
        re.compile(
            r"Slackbot|Slack-ImgProxy|BingPreview|MicrosoftPreview|SkypeUriPreview|"
            r"Yahoo Link Preview|facebookexternalhit|Twitterbot|LinkedInBot|Discordbot|"
            r"TelegramBot|WhatsApp/|Iframely|redditbot|ViberUrlDownloader|Embedly|"
            r"Mastodon/|Snap URL Preview|Google Web Preview",
            re.I,
        ),
        Reason.UA_LINK_PREVIEW,
    ),
    (
        re.compile(
            r"UptimeRobot|Pingdom|StatusCake|Better Uptime|Site24x7|Datadog|"
            r"Elastic/Synthetics",
            re.I,
        ),
        Reason.UA_MONITOR,
    ),
    (re.compile(r"HeadlessChrome|PhantomJS|Puppeteer|Playwright", re.I), Reason.UA_HEADLESS),
    (
        re.compile(
            r"^(?:python-requests|python-urllib|python-httpx|Python/|aiohttp|httpx/|curl/|"
            r"Wget/|Go-http-client|okhttp|Java/|Apache-HttpClient|node-fetch|axios/|undici|"
            r"libwww-perl|LWP::|PHP/|GuzzleHttp|Ruby|Faraday|Dart/|Scrapy|PostmanRuntime|"
            r"HTTPie|Deno/|Bun/|got \(|reqwest)|WindowsPowerShell/|\bPowerShell/",
            re.I,
        ),
        Reason.UA_LIBRARY,
    ),
    # "bot" as a word end, but not the phone brand Cubot.
    (re.compile(r"(?<!cu)bot\b|crawler|spider|\bcrawl", re.I), Reason.UA_CRAWLER),
)

# Windows NT versions that never shipped: real ones are 3.x-6.4 and 10.0
# (learn.microsoft.com "Operating system version"); gophish #280 logged a
# click with "WIndows NT 9.0", a sandbox's made-up browser.
_FORGED_RE = re.compile(r"Windows NT (?:[789]|1[1-9])\.\d", re.I)

_SAFARI = frozenset({"Safari", "Mobile Safari"})


@lru_cache(maxsize=UA_CACHE_SIZE)
def ua_facts(ua: str) -> UAFacts:  # noqa: C901 - one branch per user-agent family
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
    if _FORGED_RE.search(s):
        return UAFacts(UAKind.FORGED, Reason.UA_IMPOSSIBLE, 0.8, a.client, a.os, None)
    if BARE_WEBKIT_RE.match(s):
        return UAFacts(UAKind.BARE_WEBKIT, Reason.UA_BARE_WEBKIT, 0.6, "Apple Mail", a.os, a.device)
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
