"""Bounce reports (RFC 3464 delivery status notifications) to the sender.

A copy the upstream refused for good (5xx), or one still not taken when
retries give up (``relay_max_age``, 2 days by default), is reported to the
sender the way MTAs do: a multipart/report with a line of text for people,
a message/delivery-status part for programs (one block per recipient, with
the upstream's own reply as Diagnostic-Code) and the original headers.

It is sent through the sender's own upstream like any mail of theirs, from
and to the sender's address: submission servers (Gmail, Microsoft 365) take
no other envelope sender from an authenticated account. ``Auto-Submitted``
(RFC 3834) keeps vacation responders quiet, and a report is never sent
about a report, so no loop can start.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import formataddr, formatdate

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Failure:
    recipient: str
    code: int  # the upstream's reply code; 0: never reached (retries gave up)
    text: str
    last_attempt: float
    expired: bool = False  # retries gave up: the status says so (RFC 3463 4.4.7)


def status_of(f: Failure) -> str:
    if f.expired:
        return "4.4.7"
    m = _ENHANCED.search(f.text)
    if m and m.group(1)[0] == str(f.code)[:1]:
        return m.group(1)
    return f"{str(f.code)[:1] if f.code >= 400 else '5'}.0.0"


def build(
    *,
    sender: str,
    reporting_mta: str,
    remote_mta: str,
    arrival: float,
    failures: Sequence[Failure],
    original_headers: bytes,
    subject: str | None,
) -> bytes:
    lines = [
        "This is the mailbeacon relay. Your message could not be delivered to "
        + ("this recipient:" if len(failures) == 1 else "these recipients:"),
        "",
    ]
    for f in failures:
        why = f.text if f.code == 0 else f"{f.code} {f.text}"
        if f.expired:
            why = f"not accepted by your outgoing server ({remote_mta}) for too long; last: {why}"
        lines.append(f"  {f.recipient}: {why}")
    lines += ["", "The rest of this report is for mail programs (RFC 3464)."]
    text = "\n".join(lines) + "\n"
    report = MIMEMultipart("report", report_type="delivery-status")
    report.attach(MIMEText(text, "plain", "us-ascii" if text.isascii() else "utf-8"))

    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = formatdate(arrival)
    blocks: list[Message | str] = [per_message]
    for f in failures:
        block = Message()
        block["Final-Recipient"] = f"rfc822; {f.recipient}"
        block["Action"] = "failed"
        block["Status"] = status_of(f)
        block["Remote-MTA"] = f"dns; {remote_mta}"
        if f.code:
            block["Diagnostic-Code"] = f"smtp; {f.code} {f.text}"
        block["Last-Attempt-Date"] = formatdate(f.last_attempt)
        blocks.append(block)
    status = Message()
    status.set_type("message/delivery-status")
    status.set_payload(blocks)
    report.attach(status)

    head = original_headers.decode("utf-8", "replace").rstrip("\r\n") + "\n"
    charset = "us-ascii" if head.isascii() else "utf-8"
    report.attach(MIMEText(head, "rfc822-headers", charset))

    report["From"] = formataddr(("Mail Delivery System (mailbeacon)", sender))
    report["To"] = sender
    report["Subject"] = "Undelivered Mail Returned to Sender" + (f": {subject}" if subject else "")
    report["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or "mailbeacon.invalid"
    report["Message-ID"] = f"<dsn.{secrets.token_hex(12)}@{domain}>"
    report["Auto-Submitted"] = "auto-replied"
    return report.as_bytes(policy=SMTP)
