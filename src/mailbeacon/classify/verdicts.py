"""Label strings as plain str constants, and the one way rules build a Verdict.

The labels are model.py's; plain ``str`` locals keep building a Verdict
cheap on the hot path.
"""

from __future__ import annotations

from mailbeacon.classify.context import Verdict
from mailbeacon.classify.signatures import UAFacts
from mailbeacon.model import HUMAN_OPEN_LABELS, ClickLabel, OpenLabel

__all__ = [
    "BOT",
    "BOT_OTHER",
    "HUMAN",
    "HUMAN_OPENS",
    "H_DIRECT",
    "H_PROXY",
    "PREFETCH",
    "SCANNER",
    "SEC_SCANNER",
    "SELF",
    "verdict",
]

H_DIRECT, H_PROXY = OpenLabel.HUMAN_DIRECT.value, OpenLabel.HUMAN_VIA_PROXY.value
PREFETCH, SEC_SCANNER = OpenLabel.MACHINE_PREFETCH.value, OpenLabel.SECURITY_SCANNER.value
BOT_OTHER, SELF = OpenLabel.BOT_OTHER.value, OpenLabel.SELF.value
HUMAN, SCANNER, BOT = ClickLabel.HUMAN.value, ClickLabel.SCANNER.value, ClickLabel.BOT.value
HUMAN_OPENS = HUMAN_OPEN_LABELS


def verdict(
    label: str,
    conf: float,
    f: UAFacts,
    reasons: list[str | None],
    extra: tuple[str | None, ...] = (),
) -> Verdict:
    """A verdict with ``reasons`` first and each new code of ``extra`` after."""
    # Reason members are str (StrEnum): stored and served as their value.
    out = [r for r in reasons if r is not None]
    for r in extra:
        if r is not None and r not in out:
            out.append(r)
    return Verdict(label, out, conf, f.client, f.os, f.device)
