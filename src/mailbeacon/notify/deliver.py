"""What a delivery says and how it is sent: the JSON body, its signature, SMTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine

from mailbeacon.model import HUMAN_LABELS
from mailbeacon.notify.email_settings import EmailSettings
from mailbeacon.store import events as event_store
from mailbeacon.timefmt import iso

SIGNATURE_HEADER = "Mailbeacon-Signature"


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` (Stripe's scheme:
    the timestamp is signed too, so a captured request cannot be replayed later)."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance: float = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def build_payload(
    engine: Engine,
    delivery_id: int,
    event_type: str,
    event_id: int,
    message_id: int,
    base_url: str,
) -> dict[str, Any] | None:
    """The body, read at the first attempt (so it has the event's settled label).

    None when the event is gone or is no longer a human one: late evidence
    (a honeypot hit, a burst) relabelled it after the commit.
    """
    ev, msg = event_store.event_and_message(engine, event_id, message_id)
    if ev is None or msg is None:
        return None
    event = event_store.public(ev._mapping)
    if event["kind"] in ("open", "click") and event["label"] not in HUMAN_LABELS:
        return None  # replies and reminders are never relabelled
    event.pop("ip", None)  # receivers get what happened, not personal data
    return {
        "id": delivery_id,
        "type": event_type,
        "created_at": iso(time.time()),
        "data": {
            "message": {
                "id": msg.id,
                "recipient": msg.recipient,
                "subject": msg.subject,
                "campaign_id": msg.campaign_id,
                "variant": msg.variant,
                "sent_at": iso(msg.sent_at),
                "url": f"{base_url}/messages/{msg.id}",
            },
            "event": event,
        },
    }


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def email_for(payload: dict[str, Any], sender: str, to: str) -> EmailMessage:
    msg_info = payload["data"]["message"]
    ev = payload["data"]["event"]
    who = msg_info["recipient"]
    subject = msg_info.get("subject") or "(no subject)"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    if payload["type"] == "message.reminder":
        from mailbeacon.reminders import reminder_email

        reminder_email(mail, msg_info, ev)
        return mail
    mail["Subject"] = f"Opened: {subject} — {who}"
    how = {"human_via_proxy": "through a mailbox image proxy", "human": "by clicking a link"}.get(
        ev.get("label") or "", "directly"
    )
    if ev.get("kind") == "reply":
        how = "by replying"
    client = ", ".join(x for x in (ev.get("client"), ev.get("os")) if x) or "an unknown client"
    mail.set_content(
        f'{who} opened your email "{subject}" for the first time.\n\n'
        f"When: {ev.get('at')}\nHow: {how}, on {client}\n\n"
        f"Details: {msg_info['url']}\n\n"
        "Sent by mailbeacon because email notices are on (Settings -> Email "
        "notices, or notify_email in its config). Machine prefetches, "
        "scanners and your own opens never send this.\n"
    )
    return mail


def test_email(cfg: EmailSettings, base_url: str) -> EmailMessage:
    """What Settings -> Email notices' "Send a test email" sends."""
    mail = EmailMessage()
    mail["From"] = cfg.sender
    mail["To"] = cfg.to
    mail["Subject"] = "mailbeacon: test email"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(
        "This is a test from mailbeacon's Settings -> Email notices.\n\n"
        "Notices of first human opens and reminders will come like this one.\n"
        f"Dashboard: {base_url}/settings#email\n"
    )
    return mail


def send_email(cfg: EmailSettings, mail: EmailMessage) -> None:
    """Blocking: run in a thread. Raises on any failure (the outbox retries)."""
    host, port = cfg.host, cfg.port
    if cfg.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=20, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=20)
    with smtp:
        if cfg.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if cfg.user:
            smtp.login(cfg.user, cfg.password)
        smtp.send_message(mail)
