"""``GET /api/v1/campaigns/{id}/report``: one campaign's honest numbers.

Everything comes from the rollups: one primary-key range read of
``counters`` for the campaign (a few thousand rows even at 1M events: hours
x classes, links, clients, ...), one indexed read for the first open, one
for the warm leads and one for the link URLs. Nothing here grows with the
number of events.

Definitions (docs/reports.md): a message is *opened* when it has a human
open or a human click (an implied open). *Unique* counts messages, *total*
counts events. Machine prefetches, scanners, bots and self are never in a
rate; they are reported beside the rates.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from mailbeacon import readtime
from mailbeacon.reports import sendtime, stats, timeline, verdict
from mailbeacon.reports.recipients import warm_leads
from mailbeacon.store.rollups import SEP, TTFO_BUCKETS
from mailbeacon.store.schema import counters, links, message_stats, messages
from mailbeacon.timefmt import iso

HONEYPOT_POSITION = 0  # service.HONEYPOT_POSITION: never a real link


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


def load_counters(conn: Connection, campaign_id: int) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(counters.c.dim, counters.c.key, counters.c.n).where(
            counters.c.campaign_id == campaign_id
        )
    ).all()
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for dim, key, n in rows:
        out[dim][key] = int(n)
    return out


def campaign_report(conn: Connection, campaign_id: int, tz: str = "UTC") -> dict[str, Any]:
    """The report; ValueError for an unknown time zone."""
    zone = timeline.zone(tz)
    c = load_counters(conn, campaign_id)
    unique, label = c["unique"], c["label"]
    n = unique.get("messages", 0)
    opened, clicked = unique.get("opened", 0), unique.get("clicked", 0)

    def lab(key: str) -> int:
        return label.get(key, 0)

    opens = {
        "human_unique": opened,
        "human_total": lab("open:human_direct") + lab("open:human_via_proxy"),
        "human_direct_total": lab("open:human_direct"),
        "human_via_proxy_total": lab("open:human_via_proxy"),
        "human_pixel_unique": unique.get("human_open", 0),
        "machine_unique": unique.get("machine", 0),
        "machine_total": lab("open:machine_prefetch"),
        "scanner_total": lab("open:security_scanner"),
        "bot_total": lab("open:bot_other"),
        "self_total": lab("open:self"),
        "unlabelled_total": lab("open:unlabelled"),
        "open_rate": rate(opened, n),
        "opened_or_auto_unique": unique.get("opened_or_auto", 0),
        "opened_or_auto_rate": rate(unique.get("opened_or_auto", 0), n),
        # Read time (docs/read-time.md): rollups written when a stream ends.
        "read_unique": unique.get("read", 0),
        "read_rate": rate(unique.get("read", 0), n),
        "read_time": readtime.summary(
            c["read"], lab("open:human_direct") + lab("open:human_via_proxy")
        ),
    }
    clicks = {
        "human_unique": clicked,
        "human_total": lab("click:human"),
        "scanner_total": lab("click:scanner"),
        "bot_total": lab("click:bot"),
        "self_total": lab("click:self"),
        "unlabelled_total": lab("click:unlabelled"),
        "click_rate": rate(clicked, n),
        "click_to_open_rate": rate(clicked, opened),
    }
    hours = timeline.hourly(c["hour"])
    variants = variant_rows(c["variant"], c["subject"])
    first_opens = sendtime.local_grid(sendtime.first_open_hours(c["first_open"]), zone)
    return {
        "campaign_id": campaign_id,
        "messages": n,
        "opens": opens,
        "clicks": clicks,
        "scanned_unique": unique.get("scanned", 0),
        "replies": reply_numbers(unique, label, n),
        "links": link_rows(conn, campaign_id, c["link"]),
        "timeline": timeline.hourly_rows(hours),
        "timeline_daily": timeline.daily_rows(hours, zone),
        "heatmap": timeline.heatmap(hours, zone),
        "clients": breakdown(c["client"]),
        "os": breakdown(c["os"]),
        "devices": breakdown(c["device"]),
        "countries": breakdown(c["country"]),
        "variants": variants,
        "variants_verdict": verdict.variants_verdict(variants),
        "send_time_advice": sendtime.advice(first_opens, zone.key),
        "first_open_at": iso(first_open_at(conn, campaign_id)),
        "time_to_first_open": [
            {"bucket": b, "messages": c["ttfo"].get(b, 0)} for b in TTFO_BUCKETS
        ],
        "warm_leads": warm_leads(conn, campaign_id),
        "tz": zone.key,
    }


def reply_numbers(unique: dict[str, int], label: dict[str, int], n: int) -> dict[str, Any]:
    """Replies and bounces (rollups._reply_delta). The human reply rate is
    over messages, like the open rate; bounced messages stay in the base."""
    replied = unique.get("replied", 0)
    return {
        "human_unique": replied,
        "human_total": label.get("reply:human", 0),
        "human_reply_rate": rate(replied, n),
        "auto_reply_total": label.get("reply:auto_reply", 0),
        "bounce_total": label.get("reply:bounce", 0),
        "bounced_unique": unique.get("bounced", 0),
        "bounce_rate": rate(unique.get("bounced", 0), n),
        "opened_by_reply_unique": unique.get("opened_by_reply", 0),
    }


def breakdown(rows: dict[str, int]) -> list[dict[str, Any]]:
    """Human opens by one attribute, biggest first, with each one's share."""
    total = sum(v for v in rows.values() if v > 0)
    items = sorted(((k, v) for k, v in rows.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    return [{"name": k, "opens": v, "share": rate(v, total)} for k, v in items]


def first_open_at(conn: Connection, campaign_id: int) -> float | None:
    # ORDER BY ... LIMIT 1 rather than min(): both databases then walk
    # ix_message_stats_campaign_opened from its first non-null entry.
    return conn.execute(
        select(message_stats.c.opened_at)
        .where(message_stats.c.campaign_id == campaign_id, message_stats.c.opened_at.is_not(None))
        .order_by(message_stats.c.opened_at)
        .limit(1)
    ).scalar()


def link_rows(conn: Connection, campaign_id: int, rows: dict[str, int]) -> list[dict[str, Any]]:
    per: dict[int, dict[str, int]] = defaultdict(dict)
    for key, n in rows.items():
        pos, _, metric = key.partition(":")
        per[int(pos)][metric] = n
    per.pop(HONEYPOT_POSITION, None)  # the honeypot is a trap, not a link
    urls = link_urls(conn, campaign_id, sorted(per))
    return [
        {
            "position": pos,
            "url": urls.get(pos),
            "human_unique": v.get("unique", 0),
            "human_total": v.get("total", 0),
            "other_total": v.get("other", 0),
        }
        for pos, v in sorted(per.items())
    ]


def link_urls(conn: Connection, campaign_id: int, positions: list[int]) -> dict[int, str]:
    """URL per position, as in the campaign's first message that has it.

    A campaign's messages normally share their links, so the first message
    answers in one indexed read; a position only some messages have costs
    one more lookup each.
    """
    if not positions:
        return {}
    first = (
        select(messages.c.id)
        .where(messages.c.campaign_id == campaign_id)
        .order_by(messages.c.id)
        .limit(1)
        .scalar_subquery()
    )
    found = {
        int(p): str(u)
        for p, u in conn.execute(
            select(links.c.position, links.c.url).where(links.c.message_id == first)
        ).all()
    }
    for pos in positions:
        if pos not in found:
            url = conn.execute(
                select(links.c.url)
                .join(messages, messages.c.id == links.c.message_id)
                .where(messages.c.campaign_id == campaign_id, links.c.position == pos)
                .limit(1)
            ).scalar()
            if url is not None:
                found[pos] = str(url)
    return {p: found[p] for p in positions if p in found}


def variant_rows(
    rows: dict[str, int], subjects: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """Per variant: its subject line (the one most of its messages had),
    messages, opened, clicked, rates, and a z-test of its open (and click)
    rate against the best other variant; ``winner`` only below p 0.05;
    ``verdict``: the row's verdict in words (reports/verdict.py)."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"messages": 0, "opened": 0, "clicked": 0})
    for key, n in rows.items():
        name, _, metric = key.partition(SEP)
        per[name][metric] = n
    subject_of: dict[str, tuple[int, str]] = {}
    for key, n in (subjects or {}).items():
        name, _, subject = key.partition(SEP)
        if n > 0 and (n, subject) > subject_of.get(name, (0, "")):
            subject_of[name] = (n, subject)
    out: list[dict[str, Any]] = []
    for name, v in sorted(per.items()):
        out.append(
            {
                "variant": name,
                "subject": subject_of[name][1] if name in subject_of else None,
                **{k: v.get(k, 0) for k in ("messages", "opened", "clicked")},
                "open_rate": rate(v.get("opened", 0), v["messages"]),
                "click_rate": rate(v.get("clicked", 0), v["messages"]),
            }
        )
    for metric, prefix in (("opened", ""), ("clicked", "click_")):
        key = "open_rate" if metric == "opened" else "click_rate"
        for row in out:
            others = [o for o in out if o is not row and o["messages"] > 0]
            best = max(others, key=lambda o: (o[key], o["messages"]), default=None)
            p = 1.0
            if best is not None:
                p = stats.two_proportion_p(
                    row[metric], row["messages"], best[metric], best["messages"]
                )
            row[f"{prefix}p_value"] = round(p, 6)
            row[f"{prefix}vs"] = best["variant"] if best else None
            row[f"{prefix}winner"] = bool(
                best is not None and row[key] > best[key] and p < stats.SIGNIFICANCE
            )
            row[f"{prefix}small_sample"] = stats.small_sample(row[metric], row["messages"]) or (
                best is not None and stats.small_sample(best[metric], best["messages"])
            )
    live = sum(1 for row in out if row["messages"] > 0)
    for row in out:
        row["verdict"] = verdict.variant_verdict(row, live)
    return out
