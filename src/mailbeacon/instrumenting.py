"""Instrument an email for one recipient: create the message, sign its links
while the instrumenter walks the document, store the positions it chose.

One transaction per call (or per batch: the caller passes the connection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection

from mailbeacon.instrument import (
    EmlResult,
    InstrumentResult,
    instrument_eml,
    instrument_html,
    pixel_img,
)
from mailbeacon.instrument.tokenizer import unescape_attr
from mailbeacon.service import (
    HONEYPOT_POSITION,
    click_url,
    create_message,
    honeypot_destination,
    open_url,
)
from mailbeacon.store import messages as store
from mailbeacon.tokens import Signer

Clicks = Literal["off", "safe", "all"]
Pixel = Literal["bottom", "top"]


@dataclass
class Instrumented:
    message: dict[str, Any]
    html: str | None = None
    eml: bytes | None = None
    skipped: int = 0
    # What was done, for people: pixel_added, pixel (where, or why none),
    # links_tracked, left_alone [{url, reason, detail}], notes [...].
    report: dict[str, Any] = field(default_factory=dict)


def report(res: InstrumentResult | EmlResult) -> dict[str, Any]:
    """Exactly what instrumenting did, in the words the CLI and API show."""
    if isinstance(res, EmlResult):
        added, notes = bool(res.pixels), list(res.notes)
        where = "; ".join(res.pixels) if added else res.no_pixel
    else:
        added, notes = res.pixel is not None, []
        where = res.pixel.where if res.pixel is not None else "no pixel was asked for"
    return {
        "pixel_added": added,
        "pixel": where,
        "links_tracked": len(res.links),
        "left_alone": [
            {"url": unescape_attr(s.href), "reason": str(s.reason), "detail": s.detail}
            for s in res.skipped
        ],
        "notes": notes,
    }


def instrument_message(
    conn: Connection,
    signer: Signer,
    base_url: str,
    *,
    html: str | None = None,
    eml: str | bytes | None = None,
    recipient: str,
    subject: str | None = None,
    campaign_id: int | None = None,
    variant: str | None = None,
    sent_at: float | None = None,
    clicks: Clicks = "safe",
    pixel: Pixel = "bottom",
    honeypot: bool = False,
    text_links: bool = False,
) -> Instrumented:
    if (html is None) == (eml is None):
        raise ValueError("give exactly one of html or eml")
    hp_dest = honeypot_destination(base_url) if honeypot else None
    msg = create_message(
        conn,
        signer,
        base_url,
        recipient=recipient,
        subject=subject,
        campaign_id=campaign_id,
        variant=variant,
        sent_at=sent_at,
        honeypot_url=hp_dest,
    )
    mid = msg["id"]
    hp_url = click_url(base_url, signer, mid, HONEYPOT_POSITION, hp_dest) if hp_dest else None

    signed: dict[int, str] = {}

    def track(url: str, position: int) -> str:
        signed[position] = click_url(base_url, signer, mid, position, url)
        return signed[position]

    common: dict[str, Any] = {
        "track": track,
        # Not service.pixel_html (made to be pasted anywhere): this one is
        # shaped for where the instrumenter puts it, see instrument/pixel.py.
        "pixel_html": pixel_img(open_url(base_url, signer, mid)),
        "clicks": clicks,
        "pixel": pixel,
        "honeypot_url": hp_url,
        "tracked_prefixes": (base_url + "/c/",),
    }
    res: InstrumentResult | EmlResult
    if html is not None:
        res = instrument_html(html, **common)
        out = Instrumented(msg, html=res.html, skipped=len(res.skipped), report=report(res))
    else:
        assert eml is not None
        res = instrument_eml(eml, text_links=text_links, **common)
        out = Instrumented(msg, eml=res.eml, skipped=len(res.skipped), report=report(res))
    store.insert_links(conn, mid, res.links)
    tracked = [
        {"url": url, "position": pos, "tracked_url": signed.get(pos) or track(url, pos)}
        for pos, url in res.links
    ]
    msg["links"] = tracked + [lk for lk in msg["links"] if lk["position"] == HONEYPOT_POSITION]
    return out
