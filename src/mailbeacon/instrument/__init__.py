"""Instrumenting mail: a tracking pixel and tracked links, and a deliverability lint.

Pure functions, no I/O: the API (``POST /api/v1/instrument``) and the CLI
(``mailbeacon instrument``, ``mailbeacon lint``) wrap them. See
:mod:`.html` for the byte-preserving HTML rewriter, :mod:`.eml` for MIME,
:mod:`.links` for which links are tracked and :mod:`.lint` for the lint.
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

__all__ = [
    "Clicks",
    "EmlResult",
    "Finding",
    "InstrumentResult",
    "Plan",
    "Skip",
    "Skipped",
    "apply_plan",
    "honeypot_html",
    "instrument_eml",
    "instrument_html",
    "lint",
    "plan_links",
]
