"""Signed, purpose-bound tracking tokens.

A token is base64url (no padding) of::

    version(1) purpose(1) kid(varint) message_id(varint) [position(varint) url(utf-8)] mac(16)

``mac`` is HMAC-SHA256 over a purpose namespace and every byte before it,
truncated to 16 bytes: 128 bits, the floor docs/design.md sets. The namespace makes
an open token useless as a click token even if the purpose byte were flipped
(Datasette's ``sign(value, namespace)``). The destination URL lives inside the
click token so a redirect needs no database read and survives retention
purges. Keys have small integer ids; every key in the ring verifies, the
newest signs, so rotating keeps mail already sent working.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from hashlib import _Hash

VERSION = 1
MAC_BYTES = 16  # 128 bits of HMAC-SHA256 kept
MAX_URL = 4096  # a destination longer than this is refused when signing
_OPEN = ord("o")
_CLICK = ord("c")
_SENDER = ord("s")
_NAMESPACE = {
    _OPEN: b"mailbeacon.open\x00",
    _CLICK: b"mailbeacon.click\x00",
    _SENDER: b"mailbeacon.sender-cookie\x00",
}


_BLOCK = 64  # SHA-256's block size, in bytes
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")

# Whitespace and control characters: how header injection and filter confusion start.
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class TokenError(ValueError):
    """A token that does not verify. The message says why, for logs only."""


class DestinationError(ValueError):
    """A URL that may not be signed as a click destination."""


@dataclass(frozen=True, slots=True)
class OpenToken:
    message_id: int
    kid: int


@dataclass(frozen=True, slots=True)
class ClickToken:
    message_id: int
    position: int
    url: str
    kid: int


def _hmac_pads(key: bytes, prefix: bytes) -> tuple[_Hash, _Hash]:
    """HMAC-SHA256 (RFC 2104) keyed with ``key`` as two hash states: the inner
    one has already taken ``prefix``. ``hmac.new(key, prefix + body, sha256)``
    gives the same MAC (tests/test_tokens.py checks it)."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in key))
    inner.update(prefix)
    return inner, sha256(bytes(b ^ 0x5C for b in key))


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise TokenError("truncated varint")
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            # Reject non-minimal encodings so one value has exactly one token.
            if byte == 0 and shift:
                raise TokenError("non-minimal varint")
            return n, pos
        shift += 7


def check_destination(url: str) -> str:
    """Return ``url`` if it may be a redirect destination, else raise.

    Only absolute http(s) URLs with a host; no whitespace or control
    characters (they are how header injection and filter confusion start).
    """
    if len(url) > MAX_URL:
        raise DestinationError(f"URL is longer than {MAX_URL} characters")
    if _CONTROL.search(url):
        raise DestinationError("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise DestinationError(f"URL does not parse: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise DestinationError("only http and https URLs can be tracked")
    if not parts.hostname:
        raise DestinationError("URL has no host")
    return url


class Signer:
    """Signs and verifies tokens with a ring of keys ``{kid: secret}``."""

    def __init__(self, keys: dict[int, bytes], current: int | None = None) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self.keys = dict(keys)
        self.current = current if current is not None else max(self.keys)
        if self.current not in self.keys:
            raise ValueError("current key id is not in the ring")
        # Each (key, purpose)'s HMAC state after the key and the namespace,
        # made once: a MAC is then two copies and two updates (~1 us), where
        # hmac.new() or hmac.digest() set the key up again each time (~6 us,
        # most of a verification, and every hit verifies one).
        self._pads = {
            (kid, purpose): _hmac_pads(key, namespace)
            for kid, key in self.keys.items()
            for purpose, namespace in _NAMESPACE.items()
        }

    def _mac(self, kid: int, purpose: int, body: bytes) -> bytes:
        inner, outer = self._pads[kid, purpose]
        inner = inner.copy()
        inner.update(body)
        outer = outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:MAC_BYTES]

    def _seal(self, purpose: int, rest: bytes) -> str:
        body = bytes((VERSION, purpose)) + _varint(self.current) + rest
        raw = body + self._mac(self.current, purpose, body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def open_token(self, message_id: int) -> str:
        return self._seal(_OPEN, _varint(message_id))

    def click_token(self, message_id: int, position: int, url: str) -> str:
        check_destination(url)
        return self._seal(_CLICK, _varint(message_id) + _varint(position) + url.encode("utf-8"))

    def _unseal(self, token: str, purpose: int) -> tuple[bytes, int, int]:
        """Verify ``token``; return (body, offset after kid, kid)."""
        if not token or len(token) > 8192:
            raise TokenError("empty or oversized token")
        # binascii directly: what base64.urlsafe_b64decode/-encode do, without
        # their Python wrappers (~3 us of the ~10 us a verification took).
        try:
            text = token.encode("ascii")
            raw = binascii.a2b_base64(
                text.translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4), strict_mode=False
            )
        except (binascii.Error, ValueError):
            raise TokenError("not base64url") from None
        # Re-encoding must give the same text: rejects padding tricks and
        # stray bits in the last character, so a token has one spelling.
        if binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=") != text:
            raise TokenError("non-canonical encoding")
        if len(raw) < 2 + 1 + 1 + MAC_BYTES:
            raise TokenError("too short")
        if raw[0] != VERSION:
            raise TokenError("unknown version")
        if raw[1] != purpose:
            raise TokenError("wrong purpose")
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        kid, pos = _read_varint(body, 2)
        if kid not in self.keys:
            raise TokenError("unknown key id")
        if not hmac.compare_digest(mac, self._mac(kid, purpose, body)):
            raise TokenError("bad signature")
        return body, pos, kid

    def verify_open(self, token: str) -> OpenToken:
        body, pos, kid = self._unseal(token, _OPEN)
        message_id, pos = _read_varint(body, pos)
        if pos != len(body):
            raise TokenError("trailing bytes")
        return OpenToken(message_id, kid)

    def sender_cookie(self, issued_at: int) -> str:
        """The value of the cookie that marks the sender's own browser."""
        return self._seal(_SENDER, _varint(issued_at))

    def verify_sender_cookie(self, value: str) -> int:
        """When the cookie was issued (unix seconds); raises TokenError if forged."""
        body, pos, _kid = self._unseal(value, _SENDER)
        issued, pos = _read_varint(body, pos)
        if pos != len(body):
            raise TokenError("trailing bytes")
        return issued

    def verify_click(self, token: str) -> ClickToken:
        body, pos, kid = self._unseal(token, _CLICK)
        message_id, pos = _read_varint(body, pos)
        position, pos = _read_varint(body, pos)
        try:
            url = body[pos:].decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError("destination is not UTF-8") from None
        return ClickToken(message_id, position, url, kid)


def new_secret() -> bytes:
    """32 random bytes: a signing key the size of SHA-256's block half."""
    return secrets.token_bytes(32)


# Characters that scanners and mangling mail gateways append to or insert in
# a URL (gophish #973: "%27" appended, a path segment inserted). A token that
# verifies only after stripping them is recorded with the ``mutated`` flag.
_MUTATION_SUFFIXES = ("%27", "'", "%22", '"', "%20", ")", "]", ".", ",", ";")


def repair_candidates(token: str) -> list[str]:
    """Spellings of a damaged token that might verify, most likely first."""
    out: list[str] = []
    t = token
    for _ in range(3):
        for suffix in _MUTATION_SUFFIXES:
            if t.endswith(suffix):
                t = t[: -len(suffix)]
                out.append(t)
                break
        else:
            break
    if "/" in token:
        out.append(token.rsplit("/", 1)[-1])
    return out
