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
