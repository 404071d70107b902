"""Labels and reason codes in plain words: the reason wording is
classify/reasons.py's, in one place with the codes the rules emit."""

from __future__ import annotations

from mailbeacon.classify.network_lists import APPLE_EGRESS
from mailbeacon.classify.reasons import Reason, ip, wording
from mailbeacon.model import LABEL_CLASS

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

# Short class names for badges and CSS (the rollups' classes, model.LabelClass).
CLASS = {label: cls.value for label, cls in LABEL_CLASS.items()}

# The live feed's label filter: class -> what the menu says.
FEED_CLASSES = {
    "human": "People",
    "machine": "Machine prefetches",
    "scanner": "Security scanners",
    "bot": "Bots",
    "self": "You",
}


def labels_of(cls: str) -> list[str]:
    """The label strings in a class (``human`` -> human_direct, human_via_proxy, human)."""
    return [label for label, c in CLASS.items() if c == cls]


# A few combinations read better as one sentence.
_MPP = "Apple Mail Privacy Protection fetched this at delivery: not a read."
COMBOS = {
    ("machine_prefetch", ip(APPLE_EGRESS)): _MPP,
    ("machine_prefetch", Reason.UA_BARE_MOZILLA.value): _MPP,
    ("machine_prefetch", Reason.UA_GMAIL_PREFETCH.value): "Gmail fetched this at delivery: "
    "not a read.",
}


def explain(label: str | None, reasons: list[str]) -> list[str]:
    """Sentences for an event, the most telling first."""
    out: list[str] = []
    for code in reasons:
        combo = COMBOS.get((label or "", code))
        if combo and combo not in out:
            out.insert(0, combo)
    for code in reasons:
        out.append(wording(code))
    return out


def label_words(label: str | None) -> str:
    return LABELS.get(label, label or "")


def label_class(label: str | None) -> str:
    return CLASS.get(label or "", "unknown")


# uap-core names the iOS Mail app by the web view it draws mail in (its UA has
# no Safari tail); for an open that web view is the Mail app.
_CLIENTS = {"Mobile Safari UI/WKWebView": "Apple Mail (iPhone)"}


def client_words(client: str | None, device: str | None = None, kind: str = "open") -> str:
    """A client as people know it: 'Apple Mail (iPhone)', not the web view's name.
    Clicks keep the parser's name: an iOS app's in-app browser is not Mail."""
    if not client:
        return ""
    if kind == "open" and client in _CLIENTS:
        if device and ("iPad" in device or device == "tablet"):
            return "Apple Mail (iPad)"
        return _CLIENTS[client]
    return client


# What an event did, in words that do not contradict its label: a prefetch
# is never "Opened" beside "not a read".
_OPEN_WORDS = {
    "human": "Opened",
    "machine": "Fetched at delivery, not opened",
    "scanner": "Fetched by a security scanner",
    "bot": "Fetched by a bot",
    "self": "Opened by you",
}
_CLICK_WORDS = {
    "human": "Clicked link {n}",
    "scanner": "Link {n} checked by a security scanner",
    "bot": "Link {n} fetched by a bot",
    "self": "Link {n} clicked by you",
}


def event_words(
    kind: str, label: str | None, link_position: int | None, honeypot: int | None = None
) -> str:
    cls = label_class(label)
    if kind == "open":
        return _OPEN_WORDS.get(cls, "Pixel fetched")
    if kind == "click":
        if honeypot is not None and link_position == honeypot:
            return "Followed the hidden trap link"
        return _CLICK_WORDS.get(cls, "Link {n} fetched").format(n=link_position)
    if kind == "reply":
        return {"human": "Replied", "auto_reply": "Sent an auto-reply", "bounce": "Bounced"}.get(
            label or "", "Replied"
        )
    if kind == "reminder":
        return "Reminder: " + (label or "").replace("_", " ")
    return kind.capitalize()
