"""The read side: campaign reports, recipient lists and exports.

Reports read the rollups (``message_stats``, ``link_stats``, ``counters``,
kept by :mod:`mailbeacon.store.rollups`) and never scan raw events; only exports,
whose job is the raw facts, read ``events``.
"""

from mailbeacon.reports.campaign import campaign_report

__all__ = ["campaign_report"]
