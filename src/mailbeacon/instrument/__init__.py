"""Instrumenting mail: a tracking pixel and tracked links, and a deliverability lint.

Pure functions, no I/O: the API (``POST /api/v1/instrument``) and the CLI
(``mailbeacon instrument``, ``mailbeacon lint``) wrap them. See
:mod:`.html` for the byte-preserving HTML rewriter, :mod:`.eml` and
:mod:`.mime` for messages, :mod:`.links` and :mod:`.placeholders` for which
links are tracked, :mod:`.pixel` for where the pixel goes and :mod:`.lint`
for the lint.
"""

from __future__ import annotations

from .eml import EmlResult, instrument_eml
from .html import (
    InstrumentResult,
    Plan,
    Skipped,
    apply_plan,
    honeypot_html,
    instrument_html,
    plan_links,
)
from .links import Clicks, Skip
from .lint import Finding, lint
from .pixel import Placement, pixel_img

__all__ = [
    "Clicks",
    "EmlResult",
    "Finding",
    "InstrumentResult",
    "Placement",
    "Plan",
    "Skip",
    "Skipped",
    "apply_plan",
    "honeypot_html",
    "instrument_eml",
    "instrument_html",
    "lint",
    "pixel_img",
    "plan_links",
]
