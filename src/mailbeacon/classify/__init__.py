"""Pure classification of tracking hits: ``classify(event, ctx) -> Verdict``.

No I/O: the caller serves a :class:`Context` from memory. Rules, sources and
reason codes: docs/classification.md and shared docs/classification.md sources §8.
"""

from mailbeacon.classify.context import Context, Verdict, default_networks
from mailbeacon.classify.retro import retro_relabel
from mailbeacon.classify.rules import classify
from mailbeacon.classify.signatures import UAFacts, UAKind, ua_facts

__all__ = [
    "Context",
    "UAFacts",
    "UAKind",
    "Verdict",
    "classify",
    "default_networks",
    "retro_relabel",
    "ua_facts",
]
