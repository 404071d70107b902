"""User-Agent -> (client, OS, device), cached per UA string.

OS and device come from ua-parser 1.x (uap-core rules, with the ua-parser-rs
accelerator when installed: ~60 us per uncached parse against ~9 ms for the
Python device-detector port, measured on the same 12 UAs). uap-core knows
browsers and a few mail clients but names several mail clients and the
webmail image proxies poorly, so a short token table from docs/classification.md
section 6 is tried first. Everything here is cached with ``lru_cache``: a
mail campaign sees a few hundred distinct UAs, so the cache hit rate is ~100 %.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

__all__ = ["Attribution", "attribute", "mail_client", "UA_CACHE_SIZE"]

# Distinct UAs kept; ~300 bytes each with the facts, so 16k entries ~ 5 MB.
UA_CACHE_SIZE = 16384


@dataclass(frozen=True, slots=True)
class Attribution:
    """What a UA says about the reader's software; ``None`` when unknown."""

    client: str | None
    os: str | None
    device: str | None  # "desktop" | "mobile" | "tablet" | None
    crawler: bool = False  # uap-core put the UA in its "Spider" device family


# Mail clients uap-core lacks or names inconsistently, checked in order (the
# more specific token first: "Microsoft Outlook Mail" before "Microsoft
# Outlook"). Sources: docs/classification.md sources §6 (uap-core tests/test_ua.yaml,
# device-detector pim.yml fixtures, gophish #427 and #1920, yauaa #224).
_MAIL_CLIENTS: tuple[tuple[str, str], ...] = (
    (r"Microsoft Outlook Mail \d", "Windows Mail"),
    (r"WindowsMail/", "Windows Mail"),
    (r"MacOutlook/", "Outlook for Mac"),
    (r"^Outlook/[\d.]+ CFNetwork/", "Outlook for Mac"),
    (r"Outlook-iOS/", "Outlook for iOS"),
    (r"Outlook-Android/", "Outlook for Android"),
    (r"Microsoft Outlook|Microsoft Office/|ms-office|MSOffice \d", "Outlook"),
    (r"Thunderbird/|Icedove/", "Thunderbird"),
    (r"Airmail", "Airmail"),
    (r"eM ?Client", "eM Client"),
    (r"Mailbird/", "Mailbird"),
    (r"Postbox", "Postbox"),
    (r"Mailspring/", "Mailspring"),
    (r"Foxmail/", "Foxmail"),
    (r"BlueMail/", "BlueMail"),
    (r"Yahoo%20Mail/", "Yahoo Mail"),
    (r"Android-Gmail/", "Gmail"),
    (r"^Superhuman", "Superhuman"),
)
_MAIL_RE = [(re.compile(p, re.I), name) for p, name in _MAIL_CLIENTS]

# Mailbox proxies and prefetchers: the UA names the mailbox, not the reader's
# device, so OS and device stay unknown (Postmark: no OS/geo through Gmail's
# proxy). Sources: docs/classification.md sources §1-3.
_PROXIES: tuple[tuple[str, str], ...] = (
    (r"GoogleImageProxy|ggpht\.com", "Gmail"),
    (r"Edge/12\.246 Mozilla/5\.0$", "Gmail"),  # Gmail prefetch bot (SparkPost 2022-01-25)
    (r"^Mozilla/5\.0$", "Apple Mail"),  # MPP (uap-core #509)
    (r"FastmailUA", "Fastmail"),
    (r"hey\.com/imageproxy", "HEY"),
    (r"YahooMailProxy", "Yahoo Mail"),
    (r"SeznamEmailProxy", "Seznam"),
    (r"RamblerMail/.*ImageProxy", "Rambler Mail"),  # device-detector bots.yml
    (r"secureurl\.fwdcdn\.com|mail\.ukr\.net proxy", "UkrNet Mail"),  # device-detector
)
_PROXY_RE = [(re.compile(p, re.I), name) for p, name in _PROXIES]

# Apple Mail on macOS with MPP off: bare WebKit with no Version/Safari tail
# (uap-core #528, jenssegers/agent #144).
BARE_WEBKIT_RE = re.compile(
    r"^Mozilla/5\.0 \(Macintosh;[^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\)$"
)

_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "Debian",
    }
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"})
_TABLET_DEVICES = ("iPad", "Tablet", "Kindle", "SM-T", "Nexus 7", "Nexus 10")

_parser: ua_parser.Parser | None = None
_parser_lock = threading.Lock()


def _get_parser() -> ua_parser.Parser:
    # Our own parser without ua-parser's internal cache: we cache the finished
    # Attribution instead, so each UA is stored once.
    global _parser
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                accelerated = ua_parser.RegexResolver is not None
                matchers = (
                    ua_parser.load_lazy_builtins() if accelerated else ua_parser.load_builtins()
                )
                _parser = ua_parser.Parser(ua_parser.BestAvailableResolver(matchers))
    return _parser


def load_parser() -> None:
    """Build ua-parser's resolver now (0.3-1 s, once per process) instead of
    on the first hit whose UA needs it, which held the event loop that long."""
    _get_parser()


@lru_cache(maxsize=UA_CACHE_SIZE)
def mail_client(ua: str) -> str | None:
    """The mail client or mailbox proxy a UA names, from our token tables."""
    for rx, name in _PROXY_RE:
        if rx.search(ua):
            return name
    for rx, name in _MAIL_RE:
        if rx.search(ua):
            return name
    if BARE_WEBKIT_RE.match(ua):
        return "Apple Mail"
    return None


def _device_class(os_family: str | None, device_family: str | None) -> str | None:
    if device_family and any(t in device_family for t in _TABLET_DEVICES):
        return "tablet"
    if os_family in _MOBILE_OS:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return None


def _is_proxy(ua: str) -> bool:
    return any(rx.search(ua) for rx, _ in _PROXY_RE)


@lru_cache(maxsize=UA_CACHE_SIZE)
def attribute(ua: str) -> Attribution:
    """Client, OS and coarse device class of a UA; cached per UA string."""
    ua = ua.strip()
    if not ua:
        return Attribution(None, None, None)
    known = mail_client(ua)
    if known is not None and _is_proxy(ua):
        return Attribution(known, None, None)
    r = _get_parser().parse(ua)
    os_family = r.os.family if r.os and r.os.family != "Other" else None
    dev_family = r.device.family if r.device and r.device.family != "Other" else None
    crawler = dev_family == "Spider"
    client = known
    if client is None and r.user_agent and r.user_agent.family != "Other":
        client = r.user_agent.family
    device = None if crawler else _device_class(os_family, dev_family)
    return Attribution(client, os_family, device, crawler)
