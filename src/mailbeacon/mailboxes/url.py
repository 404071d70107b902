"""``imap://user:password@host:port[?tls=none]`` and ``imaps://...``: parsed,
checked, and written back without the password (which is sealed apart)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_PORTS = {"imap": 143, "imaps": 993}


class BadURL(ValueError):
    """One line that says what a good URL looks like."""


@dataclass(frozen=True)
class ImapURL:
    scheme: str  # imap | imaps
    user: str
    password: str
    host: str
    port: int
    tls: str  # starttls | none | implicit

    @property
    def public(self) -> str:
        """The URL as stored and listed: no password."""
        suffix = "?tls=none" if self.tls == "none" else ""
        return f"{self.scheme}://{quote(self.user, safe='')}@{self.host}:{self.port}{suffix}"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def parse(url: str, password: str | None = None) -> ImapURL:
    """Parse ``url``; ``password`` fills in for a stored URL that has none."""
    example = "use imap://user:password@host:143 (STARTTLS; ?tls=none for none) or imaps://..."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadURL(f"{url[:80]!r} is not a URL; {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadURL(f"unsupported scheme {parts.scheme!r}; {example}")
    if not parts.hostname or not parts.username:
        raise BadURL(f"the URL needs a user and a host; {example}")
    query = parse_qs(parts.query)
    tls_values = query.get("tls", [])
    unknown = sorted(set(query) - {"tls"})
    if unknown or tls_values not in ([], ["none"]):
        raise BadURL(f"the only option is ?tls=none (plain IMAP); {example}")
    if scheme == "imaps" and tls_values:
        raise BadURL("imaps:// is TLS from the first byte; use imap://...?tls=none for plain IMAP")
    secret = unquote(parts.password) if parts.password is not None else password
    if not secret:
        raise BadURL(f"the URL needs the mailbox password; {example}")
    return ImapURL(
        scheme=scheme,
        user=unquote(parts.username),
        password=secret,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        tls="implicit" if scheme == "imaps" else ("none" if tls_values else "starttls"),
    )
