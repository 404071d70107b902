"""Mail that answers tracked messages, as real systems write it, for the reply tests."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.policy import SMTP


def mid(tag: str = "m") -> str:
    return f"<{tag}.{uuid.uuid4().hex[:12]}@mailbeacon.test>"


def mail(
    sender: str,
    to: str,
    subject: str,
    *,
    in_reply_to: str | None = None,
    references: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    body: str = "Thanks, sounds good.\n",
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Tue, 03 Dec 2024 10:00:00 +0000"
    msg["Message-ID"] = message_id or mid("reply")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


def dsn(
    to: str,
    failed: str,
    original_id: str,
    original_subject: str,
    *,
    returned: str = "message/rfc822",
    action: str = "failed",
) -> bytes:
    """An RFC 3464 report in Postfix's shape (sisimai lhost-postfix-30.eml)."""
    head = f"From: {to}\r\nTo: {failed}\r\nSubject: {original_subject}\r\n"
    head += f"Message-ID: {original_id}\r\n"
    tail = head + "\r\nThe original text, which we must never read.\r\n"
    text = (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Auto-Submitted: auto-replied\r\nMessage-ID: {mid('dsn')}\r\n"
        "Date: Tue, 03 Dec 2024 10:05:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0"\r\n'
        "\r\nThis is a MIME-encapsulated message.\r\n\r\n--B0\r\n"
        "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        f"be delivered to one or more recipients.\r\n\r\n<{failed}>: 550 5.1.1\r\n\r\n--B0\r\n"
        "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nOriginal-Recipient: rfc822;{failed}\r\n"
        f"Action: {action}\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected\r\n"
        f"\r\n--B0\r\nContent-Description: Undelivered Message\r\nContent-Type: {returned}\r\n\r\n"
        + (tail if returned == "message/rfc822" else head)
        + "\r\n--B0--\r\n"
    )
    return text.encode()
