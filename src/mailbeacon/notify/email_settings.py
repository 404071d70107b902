"""Where email notices go and through which SMTP server.

Two sources, the first that exists wins:

1. **Settings → Email notices** in the dashboard: saved in the store's
   settings table (one JSON value; the SMTP password sealed with
   secretbox.py, never stored or shown in clear). Every process of every node
   reads it again within ``node.REFRESH_SECONDS`` (the one that saved it at
   once), and the delivery worker reads it for each email: no restart.
2. The config file / environment (``smtp_*`` and ``notify_email``), as before.

"Forget" on the page deletes the saved value, so the config file applies
again. An empty "Send notices to" turns notices off even when the config file
names an address (the page is the later, explicit choice).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from mailbeacon import secretbox
from mailbeacon.config import Settings
from mailbeacon.relay.accounts import check_address
from mailbeacon.store import keys

log = logging.getLogger("mailbeacon.notify")

SETTING = "email_notices"
SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    security: str  # "starttls" | "ssl" | "none"
    user: str
    password: str  # sealed when from the store (see ``opened``), clear from the config file
    sender: str  # the From address
    to: str  # where notices go; "" = off
    saved: bool  # from the settings page (True) or the config file (False)

    @property
    def on(self) -> bool:
        return bool(self.host and self.to)

    def opened(self, settings: Settings) -> EmailSettings:
        """With the password in clear, for sending (raises SecretKeyError)."""
        if not self.saved or not self.password:
            return self
        return replace(self, password=secretbox.load(settings).open(self.password))


def from_config(s: Settings) -> EmailSettings:
    return EmailSettings(
        host=s.smtp_host,
        port=s.smtp_port,
        security=s.smtp_security,
        user=s.smtp_user,
        password=s.smtp_password,
        sender=s.smtp_from,
        to=s.notify_email,
        saved=False,
    )


def effective(engine: Engine, settings: Settings) -> EmailSettings:
    """The page's settings, else the config file's. A saved value that does
    not read (edited by hand, cut short) is ignored with a warning: a server
    must still start, and the page can save good settings over it."""
    raw = keys.get_setting(engine, SETTING)
    if raw is None:
        return from_config(settings)
    try:
        v = json.loads(raw)
        return EmailSettings(
            host=str(v["host"]),
            port=int(v["port"]),
            security=str(v["security"]),
            user=str(v["user"]),
            password=str(v["password"]),
            sender=str(v["sender"]),
            to=str(v["to"]),
            saved=True,
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.warning(
            "Settings -> Email notices: the saved value is unreadable (%s); "
            "using the config file's settings until it is saved again",
            exc,
        )
        return from_config(settings)


def notify_address(engine: Engine, settings: Settings) -> str:
    """Where first-open notices go now ("" = nowhere)."""
    found = effective(engine, settings)
    return found.to if found.on else ""


def check(
    host: str, port: str, security: str, user: str, sender: str, to: str
) -> tuple[str, int, str, str, str, str]:
    """The form's fields, cleaned; ValueError with a one-line message otherwise."""
    host = host.strip()
    if not host or len(host) > 253 or not host.isprintable() or any(c in host for c in " /@:"):
        raise ValueError("Give the SMTP server's host name, such as smtp.example.com.")
    try:
        number = int(port.strip() or "0")
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError("The port is a number from 1 to 65535 (usually 587, or 465 for SSL).")
    if security not in SECURITY:
        raise ValueError("Choose STARTTLS, SSL/TLS or none.")
    user = user.strip()[:320]
    sender = check_address(sender)
    to = check_address(to) if to.strip() else ""
    return host, number, security, user, sender, to


def save(
    engine: Engine,
    settings: Settings,
    *,
    host: str,
    port: str,
    security: str,
    user: str,
    password: str,
    sender: str,
    to: str,
) -> EmailSettings:
    """Check and store the page's settings. An empty password keeps the one
    saved before (the page never shows it back); with no login there is none."""
    host, number, security, user, sender, to = check(host, port, security, user, sender, to)
    sealed = ""
    if user and password:
        sealed = secretbox.load(settings, create=True).seal(password[:1000])
    elif user:
        before = effective(engine, settings)
        sealed = before.password if before.saved else ""
        if not before.saved and before.password:
            sealed = secretbox.load(settings, create=True).seal(before.password)
    value = {
        "host": host,
        "port": number,
        "security": security,
        "user": user,
        "password": sealed,
        "sender": sender,
        "to": to,
    }
    keys.set_setting(engine, SETTING, json.dumps(value))
    return effective(engine, settings)


def forget(engine: Engine) -> None:
    keys.delete_setting(engine, SETTING)
