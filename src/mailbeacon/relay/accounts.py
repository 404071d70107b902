"""Senders as the relay sees them: SMTP logins, upstream URLs, From addresses.

The SMTP password is generated (144 random bits), shown once and stored as
an scrypt hash like the dashboard passwords; the upstream password is sealed
with the secret key (secretbox.py) because the relay must send it on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sqlalchemy import Engine

from mailbeacon import secretbox
from mailbeacon.config import Settings
from mailbeacon.store import senders as store
from mailbeacon.store.accounts import check_password, dummy_hash, hash_password
from mailbeacon.store.senders import TRACK_MODES, Sender

# RFC 6409 submission (STARTTLS) and RFC 8314 implicit TLS.
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class Upstream:
    """Where a sender's copies go: their own outgoing server."""

    host: str
    port: int
    tls: str  # "starttls" | "implicit" | "none"
    user: str | None = None
    password: str | None = None

    def url(self) -> str:
        """The URL without its password (what lists and logs show)."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        who = f"{quote(self.user, safe='')}@" if self.user else ""
        query = "?tls=none" if self.tls == "none" else ""
        return f"{scheme}://{who}{self.host}:{self.port}{query}"


def parse_upstream(url: str) -> Upstream:
    """``smtp://[user[:password]@]host[:port][?tls=none]`` or ``smtps://...``."""
    hint = "use smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"upstream URL does not parse ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"upstream must be an smtp:// or smtps:// URL with a host; {hint}")
    query = parse_qs(parts.query)
    tls_opt = [v.lower() for v in query.pop("tls", [])]
    if query or tls_opt not in ([], ["none"]) or (tls_opt and scheme == "smtps"):
        raise ValueError(f"the only URL option is ?tls=none (for smtp://); {hint}")
    tls = "implicit" if scheme == "smtps" else ("none" if tls_opt else "starttls")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return Upstream(parts.hostname, port or DEFAULT_PORTS[scheme], tls, user, password)


def check_address(addr: str) -> str:
    addr = addr.strip().lower()
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain or len(addr) > 320 or any(c in addr for c in " ,<>"):
        raise ValueError(f"{addr!r} is not an email address such as you@example.com")
    return addr


def check_track(mode: str) -> str:
    if mode not in TRACK_MODES:
        raise ValueError(f"track must be one of {', '.join(TRACK_MODES)}, not {mode!r}")
    return mode


def new_password() -> str:
    return secrets.token_urlsafe(18)


def _seal(settings: Settings, up: Upstream) -> str | None:
    if up.password is None:
        return None
    return secretbox.load(settings, create=True).seal(up.password)


def create(
    engine: Engine, settings: Settings, email: str, upstream_url: str, track: str = "opens"
) -> tuple[int, str]:
    """A new sender; returns (id, the SMTP password, shown only now)."""
    email = check_address(email)
    up = parse_upstream(upstream_url)
    password = new_password()
    sid = store.create(
        engine,
        email=email,
        password_hash=hash_password(password),
        upstream=up.url(),
        upstream_secret=_seal(settings, up),
        track=check_track(track),
    )
    return sid, password


def change(
    engine: Engine,
    settings: Settings,
    email: str,
    *,
    upstream_url: str | None = None,
    track: str | None = None,
    also: list[str] | None = None,
    rate_per_hour: int | None = None,
) -> bool:
    values: dict[str, object] = {}
    if upstream_url is not None:
        up = parse_upstream(upstream_url)
        values.update(upstream=up.url(), upstream_secret=_seal(settings, up))
    if track is not None:
        values["track"] = check_track(track)
    if also is not None:
        values["also"] = ",".join(dict.fromkeys(check_address(a) for a in also if a.strip()))
    if rate_per_hour is not None:
        if rate_per_hour < 0:
            raise ValueError("--rate must be 0 (no limit) or more copies per hour")
        values["rate_per_hour"] = rate_per_hour
    if not values:
        return store.by_email(engine, check_address(email)) is not None
    return store.change(engine, check_address(email), **values)


def reset_password(engine: Engine, email: str) -> str | None:
    password = new_password()
    ok = store.change(engine, check_address(email), password_hash=hash_password(password))
    return password if ok else None


def upstream_of(sender: Sender, settings: Settings) -> Upstream:
    """The sender's upstream with its password opened (SecretKeyError when the key is wrong)."""
    up = parse_upstream(sender.upstream)
    if sender.upstream_secret is None:
        return up
    password = secretbox.load(settings).open(sender.upstream_secret)
    return Upstream(up.host, up.port, up.tls, up.user, password)


def authenticate(engine: Engine, login: str, password: str) -> Sender | None:
    """Blocking (scrypt, ~50 ms): run in a thread."""
    sender = store.by_email(engine, login.strip().lower())
    if sender is None:  # as long as a wrong password: AUTH reveals no address
        check_password(password, dummy_hash())
        return None
    return sender if check_password(password, sender.password_hash) else None
