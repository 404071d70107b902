"""Labels and reason codes (docs/classification.md) in plain words."""

from __future__ import annotations

LABELS = {
    "human_direct": "Read by a person",
    "human_via_proxy": "Read by a person, through a mailbox image proxy",
    "machine_prefetch": "Machine prefetch: not a read",
    "security_scanner": "Security scanner",
    "bot_other": "Bot",
    "self": "You",
    "human": "Clicked by a person",
    "scanner": "Security scanner",
    "bot": "Bot",
    None: "Not labelled yet",
}

# Short class names for badges and CSS (same classes as the rollups).
CLASS = {
    "human_direct": "human",
    "human_via_proxy": "human",
    "human": "human",
    "machine_prefetch": "machine",
    "security_scanner": "scanner",
    "scanner": "scanner",
    "bot_other": "bot",
    "bot": "bot",
    "self": "self",
}

REASONS = {
    "self:cookie": "Your own browser fetched this (it carries your dashboard sign-in mark).",
    "self:compose_time": "Fetched while you were still writing the email (the compose "
    "window loads the pixel): your own activation fetch, not an open.",
    "self:sender_ip": "Came from an address you use for the dashboard or the API.",
    "method:head": "A HEAD request: software checking the link, not a person opening it.",
    "token:mutated": "The link was rewritten on the way (a scanner's URL repair).",
    "honeypot": "Followed the invisible link no person can see: a scanner.",
    "honeypot:window": "Within seconds of a hit on the invisible trap link: the same scanner.",
    "ua:empty": "Sent no browser name at all, which mail clients always do.",
    "ua:gmail_prefetch": "Gmail fetched this ahead of time, before anyone read it.",
    "ua:bare_mozilla": "The bare 'Mozilla/5.0' that Apple Mail Privacy Protection uses.",
    "ua:gmail_image_proxy": "Loaded through Gmail's image proxy, which fetches when "
    "the reader opens the mail.",
    "ua:fastmail_proxy": "Loaded through Fastmail's image proxy when the reader opened it.",
    "ua:hey_proxy": "Loaded through HEY's image proxy when the reader opened it.",
    "ua:yahoo_mail_proxy": "Loaded through Yahoo Mail's image proxy.",
    "ua:seznam_proxy": "Loaded through Seznam's image proxy.",
    "ua:google_safety": "Google's link safety checker.",
    "ua:barracuda_sentinel": "Barracuda Sentinel's email security scanner.",
    "ua:virustotal": "VirusTotal's scanner.",
    "ua:link_preview": "A chat or social app building a link preview.",
    "ua:headless": "A headless (automated) browser.",
    "ua:library": "A programming library, not a mail client or browser.",
    "ua:crawler": "A web crawler.",
    "ua:bare_webkit": "The plain WebKit signature of Apple Mail and iOS mail apps.",
    "ua:mail_client": "A known mail client.",
    "ua:browser": "A web browser.",
    "ua:safari": "Safari.",
    "ua:unknown": "Software we do not recognise.",
    "timing:before_send": "Happened before the email was sent.",
    "timing:2s_after_send": "Within 2 seconds of sending: faster than any person.",
    "timing:60s_after_send": "Within a minute of sending, when scanners check new mail.",
    "burst:same_second": "Another link of this email was hit from the same place in "
    "the same second.",
    "burst:3s": "Several links hit within 3 seconds.",
    "burst:every_link": "Every link of the email was followed within a minute.",
    "device:mismatch": "Another click seconds apart from a different device and address.",
    "click:no_prior_open": "A click with no open before it.",
    "campaign:ip_many_recipients": "The same address clicked mail of many recipients.",
}

NETWORKS = {
    "apple_egress": "Apple's iCloud Private Relay / Mail Privacy Protection network",
    "microsoft_eop": "Microsoft Exchange Online Protection (Safe Links)",
    "microsoft_cloud": "a Microsoft cloud network",
    "google_crawlers": "Google's crawler network",
}

# A few combinations read better as one sentence.
COMBOS = {
    ("machine_prefetch", "ip:apple_egress"): "Apple Mail Privacy Protection fetched this "
    "at delivery: not a read.",
    ("machine_prefetch", "ua:bare_mozilla"): "Apple Mail Privacy Protection fetched this "
    "at delivery: not a read.",
    ("machine_prefetch", "ua:gmail_prefetch"): "Gmail fetched this at delivery: not a read.",
}


def explain(label: str | None, reasons: list[str]) -> list[str]:
    """Sentences for an event, the most telling first."""
    out: list[str] = []
    for code in reasons:
        combo = COMBOS.get((label or "", code))
        if combo and combo not in out:
            out.insert(0, combo)
    for code in reasons:
        if code in REASONS:
            out.append(REASONS[code])
        elif code.startswith("ip:"):
            name = code[3:]
            out.append(f"Came from {NETWORKS.get(name, 'the network list ' + repr(name))}.")
        elif code.startswith("method:"):
            out.append(f"A {code[7:].upper()} request, which people's clients do not send.")
        else:
            out.append(code)
    return out


def label_words(label: str | None) -> str:
    return LABELS.get(label, label or "")


def label_class(label: str | None) -> str:
    return CLASS.get(label or "", "unknown")
