"""Senders as the relay sees them: SMTP logins, upstream URLs, From addresses.

The SMTP password is generated (144 random bits), shown once and stored as
an scrypt hash like the dashboard passwords; the upstream password is sealed
with the secret key (secretbox.py) because the relay must send it on.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sqlalchemy import Engine

from mailbeacon import secretbox
from mailbeacon.config import Settings
from mailbeacon.store import senders as store
from mailbeacon.store.accounts import check_password, dummy_hash, hash_password
from mailbeacon.store.senders import TRACK_MODES, Sender

# RFC 6409 submission (STARTTLS) and RFC 8314 implicit TLS.
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
TLS_MODES = ("starttls", "implicit", "none")
HINT = "use smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465"


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
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 (RFC 3986 3.2.2)
        return f"{scheme}://{who}{host}:{self.port}{query}"


def check_host(host: str) -> str:
    """One host name or IP address: urlsplit takes ``bad host`` or ``a,b`` as
    a host, which no resolver would, and a page must not store one."""
    name = host.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    ok = all(label and all(c.isalnum() or c in "-_" for c in label) for label in labels)
    if not ok or len(name) > 253:
        raise ValueError(f"{host[:80]!r} is not a host name such as smtp.example.com")
    return name


def check_port(port: str | int | None) -> int:
    try:
        number = int(str(port).strip())
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError("the port is a number from 1 to 65535 (587 for STARTTLS, 465 for TLS)")
    return number


def parse_upstream(url: str) -> Upstream:
    """``smtp://[user[:password]@]host[:port][?tls=none]`` or ``smtps://...``.

    A URL with a control character is refused: urlsplit would silently drop
    CR, LF and tab (``smtp://mail\\r\\n.example.com`` reads as mail.example.com)."""
    if not url.strip().isprintable():
        raise ValueError(f"upstream URL has a control character (a line break?); {HINT}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"upstream URL does not parse ({exc}); {HINT}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"upstream must be an smtp:// or smtps:// URL with a host; {HINT}")
    query = parse_qs(parts.query)
    tls_opt = [v.lower() for v in query.pop("tls", [])]
    if query or tls_opt not in ([], ["none"]) or (tls_opt and scheme == "smtps"):
        raise ValueError(f"the only URL option is ?tls=none (for smtp://); {HINT}")
    tls = "implicit" if scheme == "smtps" else ("none" if tls_opt else "starttls")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    try:
        host = check_host(parts.hostname)
        port = DEFAULT_PORTS[scheme] if port is None else check_port(port)
    except ValueError as exc:
        raise ValueError(f"{exc}; {HINT}") from None
    return Upstream(host, port, tls, user, password)


def upstream_from(host: str, port: str, tls: str, user: str, password: str) -> Upstream:
    """The dashboard's upstream form, checked as strictly as a URL: what it
    saves must read back the same through ``parse_upstream`` (the relay
    reads the saved URL for every copy). An empty password is None."""
    if tls not in TLS_MODES:
        raise ValueError(f"security must be one of {', '.join(TLS_MODES)}")
    user = user.strip()
    if len(user) > 320 or not user.isprintable():
        raise ValueError("the login is one line of up to 320 characters")
    if len(password) > 1000 or not password.isprintable():
        raise ValueError("the password is one line of up to 1000 characters")
    up = Upstream(check_host(host), check_port(port), tls, user or None, password or None)
    if parse_upstream(up.url()) != replace(up, password=None):  # a name urlsplit reads otherwise
        raise ValueError(f"{host[:80]!r} is not a host name such as smtp.example.com")
    return up


def check_address(addr: str) -> str:
    addr = addr.strip().lower()
    local, _, domain = addr.rpartition("@")
    bad = not addr.isprintable() or any(c in addr for c in " ,<>")
    if not local or "." not in domain or len(addr) > 320 or bad:
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


def check_free(engine: Engine, address: str, sender_email: str) -> None:
    """Refuse an address another sender may already send as: the relay lets
    a login send as each of its addresses, so one address has one owner."""
    owner = store.using(engine, address)
    if owner is not None and owner.email != sender_email:
        raise ValueError(f"{address} is already an address of the sender {owner.email}")


def create(
    engine: Engine, settings: Settings, email: str, upstream_url: str, track: str = "opens"
) -> tuple[int, str]:
    """A new sender; returns (id, the SMTP password, shown only now)."""
    email = check_address(email)
    up = parse_upstream(upstream_url)
    password = new_password()
    password_hash, secret, mode = hash_password(password), _seal(settings, up), check_track(track)
    with store.addresses_locked(engine):
        check_free(engine, email, email)
        sid = store.create(
            engine, email=email, password_hash=password_hash, upstream=up.url(),
            upstream_secret=secret, track=mode,
        )  # fmt: skip
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
    if rate_per_hour is not None:
        if rate_per_hour < 0:
            raise ValueError("--rate must be 0 (no limit) or more copies per hour")
        values["rate_per_hour"] = rate_per_hour
    if also is None:
        if not values:
            return store.by_email(engine, check_address(email)) is not None
        return store.change(engine, check_address(email), **values)
    email = check_address(email)
    wanted = dict.fromkeys(check_address(a) for a in also if a.strip())
    with store.addresses_locked(engine):  # checked and written by one admin at a time
        for addr in wanted:
            check_free(engine, addr, email)
        values["also"] = ",".join(a for a in wanted if a != email)
        return store.change(engine, email, **values)


def change_upstream(engine: Engine, settings: Settings, email: str, up: Upstream) -> bool:
    """Like ``senders set --upstream``, for the dashboard's form: without a
    password but with a login, the saved password stays (the page never
    shows it back, so an empty field means "keep it"); without a login there
    is none to keep."""
    values: dict[str, object] = {"upstream": up.url()}
    if up.password is not None or not up.user:
        values["upstream_secret"] = _seal(settings, up)
    return store.change(engine, check_address(email), **values)


def reset_password(engine: Engine, email: str) -> str | None:
    password = new_password()
    ok = store.change(engine, check_address(email), password_hash=hash_password(password))
    return password if ok else None


def upstream_of(sender: Sender, settings: Settings) -> Upstream:
    """The sender's upstream with its password opened (SecretKeyError when the key is wrong).

    Once per relayed message: the key is read each time (a replaced key file
    counts from the next message on), what it opens is kept. Parsing the URL,
    making the Fernet box and opening the password took ~0.4 ms of CPU per
    message in bench/relay.py (thread_time, loaded 2-core machine)."""
    if sender.upstream_secret is None:
        return _parsed(sender.upstream)
    return _opened(sender.upstream, sender.upstream_secret, *secretbox.read_key(settings))


@functools.lru_cache(maxsize=64)
def _parsed(url: str) -> Upstream:
    return parse_upstream(url)


@functools.lru_cache(maxsize=64)
def _opened(url: str, sealed: str, key: str, where: str) -> Upstream:
    """The same URL, sealed password and key open to the same password (a
    failure, SecretKeyError, is not kept: it is raised again)."""
    up = parse_upstream(url)
    password = secretbox.SecretBox(key, where).open(sealed)
    return Upstream(up.host, up.port, up.tls, up.user, password)


def authenticate(engine: Engine, login: str, password: str) -> Sender | None:
    """Blocking (scrypt, ~50 ms): run in a thread."""
    sender = store.by_email(engine, login.strip().lower())
    if sender is None:  # as long as a wrong password: AUTH reveals no address
        check_password(password, dummy_hash())
        return None
    return sender if check_password(password, sender.password_hash) else None
