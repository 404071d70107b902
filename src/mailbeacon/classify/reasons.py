"""The closed set of reason codes the rules emit, each with its plain words.

A verdict's ``reasons`` are strings (they are stored and served as JSON), but
every one of them comes from here: a :class:`Reason` member, or one of the two
parameterised families, ``ip:<list>`` (a network list of
classify/network_lists.py, or one a user loaded) and ``method:<verb>``.
:func:`wording` turns any of them into a sentence; tests/test_reasons.py fails
when a code or a list has none. Labels themselves stay in model.py.
"""

from __future__ import annotations

import enum

from mailbeacon.classify.network_lists import LISTS

__all__ = [
    "IP_PREFIX",
    "METHOD_PREFIX",
    "WORDING",
    "Reason",
    "ip",
    "is_known",
    "method",
    "wording",
]

IP_PREFIX = "ip:"
METHOD_PREFIX = "method:"


class Reason(enum.StrEnum):
    # the sender's own hits (docs/classification.md sources §7)
    SELF_COOKIE = "self:cookie"
    SELF_COMPOSE_TIME = "self:compose_time"
    SELF_SENDER_IP = "self:sender_ip"
    # the request itself
    METHOD_HEAD = "method:head"
    METHOD_OTHER = "method:other"
    TOKEN_MUTATED = "token:mutated"
    HONEYPOT = "honeypot"
    HONEYPOT_WINDOW = "honeypot:window"
    # the user agent
    UA_EMPTY = "ua:empty"
    UA_GMAIL_PREFETCH = "ua:gmail_prefetch"
    UA_BARE_MOZILLA = "ua:bare_mozilla"
    UA_GMAIL_PROXY = "ua:gmail_image_proxy"
    UA_FASTMAIL_PROXY = "ua:fastmail_proxy"
    UA_HEY_PROXY = "ua:hey_proxy"
    UA_YAHOO_PROXY = "ua:yahoo_mail_proxy"
    UA_SEZNAM_PROXY = "ua:seznam_proxy"
    UA_WEBMAIL_PROXY = "ua:webmail_image_proxy"
    UA_GOOGLE_SAFETY = "ua:google_safety"
    UA_BARRACUDA = "ua:barracuda_sentinel"
    UA_VIRUSTOTAL = "ua:virustotal"
    UA_LINK_RESOLVER = "ua:security_link_resolver"
    UA_LINK_PREVIEW = "ua:link_preview"
    UA_HEADLESS = "ua:headless"
    UA_LIBRARY = "ua:library"
    UA_MONITOR = "ua:monitor"
    UA_CRAWLER = "ua:crawler"
    UA_BARE_WEBKIT = "ua:bare_webkit"
    UA_MAIL_CLIENT = "ua:mail_client"
    UA_BROWSER = "ua:browser"
    UA_IMPOSSIBLE = "ua:impossible_browser"
    UA_SAFARI = "ua:safari"
    UA_UNKNOWN = "ua:unknown"
    # where it came from, beyond a list
    NET_WEBMAIL_PROXY = "net:webmail_proxy"
    # time since send
    TIMING_BEFORE_SEND = "timing:before_send"
    TIMING_2S = "timing:2s_after_send"
    TIMING_60S = "timing:60s_after_send"
    TIMING_DELIVERY = "timing:delivery_window"
    # what else happened on the message
    BURST_SAME_SECOND = "burst:same_second"
    BURST_3S = "burst:3s"
    BURST_EVERY_LINK = "burst:every_link"
    DEVICE_MISMATCH = "device:mismatch"
    CLICK_NO_PRIOR_OPEN = "click:no_prior_open"
    AFTER_HUMAN_OPEN = "history:after_human_open"
    # what else happened on the campaign
    CAMPAIGN_MANY_RECIPIENTS = "campaign:ip_many_recipients"
    CAMPAIGN_SAME_SECOND = "campaign:same_second"


WORDING: dict[Reason, str] = {
    Reason.SELF_COOKIE: "Your own browser fetched this (it carries your dashboard sign-in mark).",
    Reason.SELF_COMPOSE_TIME: "Fetched while you were still writing the email (the compose "
    "window loads the pixel): your own activation fetch, not an open.",
    Reason.SELF_SENDER_IP: "Came from an address you use for the dashboard or the API.",
    Reason.METHOD_HEAD: "A HEAD request: software checking the link, not a person opening it.",
    Reason.METHOD_OTHER: "A request method people's mail clients and browsers do not send.",
    Reason.TOKEN_MUTATED: "The link was rewritten on the way (a scanner's URL repair).",
    Reason.HONEYPOT: "Followed the invisible link no person can see: a scanner.",
    Reason.HONEYPOT_WINDOW: "Within seconds of a hit on the invisible trap link: the same scanner.",
    Reason.UA_EMPTY: "Sent no browser name at all, which mail clients always do.",
    Reason.UA_GMAIL_PREFETCH: "Gmail fetched this ahead of time, before anyone read it.",
    Reason.UA_BARE_MOZILLA: "The bare 'Mozilla/5.0' that Apple Mail Privacy Protection uses.",
    Reason.UA_GMAIL_PROXY: "Loaded through Gmail's image proxy, which fetches when "
    "the reader opens the mail.",
    Reason.UA_FASTMAIL_PROXY: "Loaded through Fastmail's image proxy when the reader opened it.",
    Reason.UA_HEY_PROXY: "Loaded through HEY's image proxy when the reader opened it.",
    Reason.UA_YAHOO_PROXY: "Loaded through Yahoo Mail's image proxy.",
    Reason.UA_SEZNAM_PROXY: "Loaded through Seznam's image proxy.",
    Reason.UA_WEBMAIL_PROXY: "Loaded through a webmail provider's image proxy when the "
    "reader opened the mail.",
    Reason.UA_GOOGLE_SAFETY: "Google's link safety checker.",
    Reason.UA_BARRACUDA: "Barracuda Sentinel's email security scanner.",
    Reason.UA_VIRUSTOTAL: "VirusTotal's scanner.",
    Reason.UA_LINK_RESOLVER: "A security product resolving the link to check it.",
    Reason.UA_LINK_PREVIEW: "A chat or social app building a link preview.",
    Reason.UA_HEADLESS: "A headless (automated) browser.",
    Reason.UA_LIBRARY: "A programming library or command-line tool, not a mail client or browser.",
    Reason.UA_MONITOR: "An uptime monitor checking the address.",
    Reason.UA_CRAWLER: "A web crawler.",
    Reason.UA_BARE_WEBKIT: "The plain WebKit signature of Apple Mail and iOS mail apps.",
    Reason.UA_MAIL_CLIENT: "A known mail client.",
    Reason.UA_BROWSER: "A web browser.",
    Reason.UA_IMPOSSIBLE: "A browser version or system that no person runs.",
    Reason.UA_SAFARI: "Safari.",
    Reason.UA_UNKNOWN: "Software we do not recognise.",
    Reason.NET_WEBMAIL_PROXY: "Came from the mailbox provider's image proxy: the reader "
    "opened the mail in webmail.",
    Reason.TIMING_BEFORE_SEND: "Happened before the email was sent.",
    Reason.TIMING_2S: "Within 2 seconds of sending: faster than any person.",
    Reason.TIMING_60S: "Within a minute of sending, when scanners check new mail.",
    Reason.TIMING_DELIVERY: "Within minutes of sending, while security scanners still "
    "check new mail.",
    Reason.BURST_SAME_SECOND: "Another link of this email was hit from the same place in "
    "the same second.",
    Reason.BURST_3S: "Several links hit within 3 seconds.",
    Reason.BURST_EVERY_LINK: "Every link of the email was followed within a minute.",
    Reason.DEVICE_MISMATCH: "Another click seconds apart from a different device and address.",
    Reason.CLICK_NO_PRIOR_OPEN: "A click with no open before it.",
    Reason.AFTER_HUMAN_OPEN: "After the reader had opened the mail.",
    Reason.CAMPAIGN_MANY_RECIPIENTS: "The same address clicked mail of many recipients.",
    Reason.CAMPAIGN_SAME_SECOND: "The same network clicked mail of several recipients in "
    "the same second.",
}

_METHODS = {"head": Reason.METHOD_HEAD}


def ip(name: str) -> str:
    """The reason code for a hit from network list ``name``."""
    return IP_PREFIX + name


def method(verb: str) -> Reason:
    """The reason code for a request method other than GET."""
    return _METHODS.get(verb.lower(), Reason.METHOD_OTHER)


def is_known(code: str) -> bool:
    """True for a member of the closed set, including ``ip:<any list name>``."""
    if code.startswith(IP_PREFIX):
        return len(code) > len(IP_PREFIX)
    return code in Reason._value2member_map_


def wording(code: str) -> str:
    """One sentence for a reason code; user-loaded lists are named as loaded."""
    if code.startswith(IP_PREFIX):
        name = code[len(IP_PREFIX) :]
        lst = LISTS.get(name)
        return f"Came from {lst.wording if lst else 'the network list ' + repr(name)}."
    member = Reason._value2member_map_.get(code)
    if member is not None:
        return WORDING[Reason(code)]
    if code.startswith(METHOD_PREFIX):  # stored before method codes were closed
        return WORDING[Reason.METHOD_OTHER]
    return code
