"""Creating tracked messages, one piece the API, the CLI, the demo and the
relay all use, so a message looks the same however it was made: by hand
(``create_message``), or from an email instrumented for one recipient
(``instrument_message``: create the message, sign its links while the
instrumenter walks the document, store the positions it chose; one
transaction per call, or per batch when the caller passes the connection);
and how a message is shown (``public_message``, ``message_view``)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from mailbeacon import readtime
from mailbeacon.instrument import (
    EmlResult,
    InstrumentResult,
    instrument_eml,
    instrument_html,
    pixel_img,
)
from mailbeacon.instrument.tokenizer import unescape_attr
from mailbeacon.model import CLICK_LABELS, OPEN_LABELS
from mailbeacon.store import events as event_store
from mailbeacon.store import messages as store
from mailbeacon.timefmt import iso
from mailbeacon.tokens import DestinationError, Signer, check_destination

# The honeypot link always takes position 0: real links count from 1, so a
# link added later can never collide with it.
HONEYPOT_POSITION = 0
HONEYPOT_PATH = "/hp"


class NotFound(LookupError):
    pass


class Invalid(ValueError):
    pass


def open_url(base_url: str, signer: Signer, message_id: int) -> str:
    return f"{base_url}/o/{signer.open_token(message_id)}.gif"


def click_url(base_url: str, signer: Signer, message_id: int, position: int, url: str) -> str:
    return f"{base_url}/c/{signer.click_token(message_id, position, url)}"


def pixel_html(src: str) -> str:
    """An image every client loads and nobody sees.

    1x1 with explicit width/height attributes *and* CSS (Outlook reads the
    attributes, webmail the style), empty alt so nothing shows when images
    are blocked, and no ``display:none``, which some clients skip loading.
    """
    return (
        f'<img src="{html.escape(src)}" width="1" height="1" alt="" '
        'style="width:1px;height:1px;border:0;margin:0;padding:0;" />'
    )


def check_recipient(recipient: str) -> str:
    recipient = recipient.strip()
    if not recipient or len(recipient) > 320 or "@" not in recipient:
        raise Invalid("recipient must be an email address such as ana@example.com")
    return recipient


def check_campaign_name(name: str) -> str:
    """A campaign's name as stored: trimmed, 1 to CAMPAIGN_NAME_MAX characters."""
    name = name.strip()
    if not name or len(name) > store.CAMPAIGN_NAME_MAX:
        raise Invalid(f"a campaign name has 1 to {store.CAMPAIGN_NAME_MAX} characters")
    return name


def check_message_id(value: str | None) -> str | None:
    """The Message-ID header as sent, in angle brackets (replies name it so)."""
    if value is None or not value.strip():
        return None
    inner = value.strip().strip("<>").strip()
    if not inner or any(c.isspace() or c in "<>" for c in inner) or len(inner) > 990:
        raise Invalid("message_id_header must be one Message-ID such as <abc123@mail.example.com>")
    return f"<{inner}>"


def check_links(urls: Sequence[str]) -> None:
    for url in urls:
        try:
            check_destination(url)
        except DestinationError as exc:
            raise Invalid(f"cannot track {url[:200]!r}: {exc}") from None


def create_message(
    conn: Connection,
    signer: Signer,
    base_url: str,
    *,
    recipient: str,
    subject: str | None = None,
    campaign_id: int | None = None,
    variant: str | None = None,
    sent_at: float | None = None,
    links: Sequence[str] = (),
    honeypot_url: str | None = None,
    message_id_header: str | None = None,
) -> dict[str, Any]:
    """Insert a message and its links in ``conn``'s transaction; return its public form."""
    recipient = check_recipient(recipient)
    check_links(links)
    if honeypot_url is not None:
        check_links([honeypot_url])
    if campaign_id is not None and store.get_campaign(conn, campaign_id) is None:
        raise Invalid(
            f"campaign_id {campaign_id} does not exist; create it with POST /api/v1/campaigns"
        )
    positions = [(i + 1, url) for i, url in enumerate(links)]
    honeypot_position = HONEYPOT_POSITION if honeypot_url else None
    if honeypot_url:
        positions.append((HONEYPOT_POSITION, honeypot_url))
    mid, created = store.insert_message(
        conn,
        recipient=recipient,
        subject=subject,
        campaign_id=campaign_id,
        variant=variant,
        sent_at=sent_at,
        honeypot_position=honeypot_position,
        message_id_header=check_message_id(message_id_header),
    )
    store.insert_links(conn, mid, positions)
    row = {
        "id": mid,
        "recipient": recipient,
        "subject": subject,
        "campaign_id": campaign_id,
        "variant": variant,
        "sent_at": sent_at,
        "created_at": created,
        "honeypot_position": honeypot_position,
        "message_id_header": check_message_id(message_id_header),
    }
    return public_message(row, signer, base_url, [{"position": p, "url": u} for p, u in positions])


def add_link(
    conn: Connection, signer: Signer, base_url: str, message_id: int, url: str
) -> dict[str, Any]:
    check_links([url])
    if store.get_message(conn, message_id) is None:
        raise NotFound(f"message {message_id} does not exist")
    position = store.next_position(conn, message_id)
    store.insert_links(conn, message_id, [(position, url)])
    return {
        "url": url,
        "position": position,
        "tracked_url": click_url(base_url, signer, message_id, position, url),
    }


def public_message(
    row: dict[str, Any], signer: Signer, base_url: str, links: list[dict[str, Any]]
) -> dict[str, Any]:
    src = open_url(base_url, signer, row["id"])
    return {
        **store.public_fields(row, row["id"]),
        "open_url": src,
        "pixel_html": pixel_html(src),
        "honeypot_position": row.get("honeypot_position"),
        "message_id_header": row.get("message_id_header"),
        "links": [
            {
                "url": link["url"],
                "position": link["position"],
                "tracked_url": click_url(
                    base_url, signer, row["id"], link["position"], link["url"]
                ),
            }
            for link in links
        ],
    }


def message_view(
    conn: Connection, signer: Signer, base_url: str, message_id: int
) -> dict[str, Any]:
    row = store.get_message(conn, message_id)
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    out = public_message(row, signer, base_url, store.message_links(conn, message_id))
    st = _stats(conn, message_id)
    out["summary"] = _summary(st)
    out.update(reply_summary(st))
    out["read_time"] = read_time_summary(conn, message_id, st)
    return out


def read_time_summary(conn: Connection, message_id: int, st: dict[str, Any]) -> dict[str, Any]:
    """Read-time buckets of the message's opens beside its human opens
    (docs/read-time.md). Read from its events: one indexed range, a message
    has a handful of opens."""
    human = int(st.get("open_human_direct") or 0) + int(st.get("open_human_via_proxy") or 0)
    counts = readtime.count(event_store.read_times(conn, message_id))
    return readtime.summary(counts, human)


def _stats(conn: Connection, message_id: int) -> dict[str, Any]:
    return store.stats_row(conn, message_id)


def message_summary(conn: Connection, message_id: int) -> dict[str, Any]:
    """Read from the message's rollup row: one primary-key read, however many hits."""
    return _summary(_stats(conn, message_id))


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    opens = {lab: int(m[f"open_{lab}"]) for lab in OPEN_LABELS if m.get(f"open_{lab}")}
    clicks = {lab: int(m[f"click_{lab}"]) for lab in CLICK_LABELS if m.get(f"click_{lab}")}
    return {
        "opens": sum(opens.values()),
        "clicks": sum(clicks.values()),
        "opens_by_label": opens,
        "clicks_by_label": clicks,
        "opened": m.get("opened_at") is not None,
        "opened_at": iso(m.get("opened_at")),
        "first_human_open_at": iso(m.get("first_human_open_at")),
        "first_human_click_at": iso(m.get("first_human_click_at")),
    }


def reply_summary(m: dict[str, Any]) -> dict[str, Any]:
    """Replies (0010), beside the summary in ``GET /api/v1/messages/{id}``.
    A human reply opens a message with no human open or click yet:
    ``opened_by`` says which came first."""
    return {
        "replied_at": iso(m.get("replied_at")),
        "replies": int(m.get("replies") or 0),
        "auto_replies": int(m.get("auto_replies") or 0),
        "bounced": bool(m.get("bounced")),
        "opened_by": _opened_by(m),
    }


def _opened_by(m: dict[str, Any]) -> str | None:
    opened = m.get("opened_at")
    if opened is None:
        return None
    if opened == m.get("first_human_open_at"):
        return "open"
    if opened == m.get("first_human_click_at"):
        return "click"
    return "reply" if opened == m.get("replied_at") else "open"


def resolve_campaign(conn: Connection, name: str | None, create: bool = True) -> int | None:
    if not name:
        return None
    name = check_campaign_name(name)
    found = store.campaign_by_name(conn, name)
    if found:
        return int(found["id"])
    if not create:
        raise NotFound(f"no campaign named {name!r}")
    return int(store.create_campaign(conn, name)["id"])


def honeypot_destination(base_url: str) -> str:
    return base_url + HONEYPOT_PATH


__all__ = ["Engine"]


# --- from an email: the instrumenter's output for one recipient -----------

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
