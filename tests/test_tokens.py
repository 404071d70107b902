"""The token codec: round trips, purpose binding, forgeries, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.tokens import (
    MAC_BYTES,
    DestinationError,
    Signer,
    TokenError,
    check_destination,
    repair_candidates,
)

KEY_A = b"a" * 32
KEY_B = b"b" * 32
signer = Signer({1: KEY_A})


def test_open_round_trip_and_mac_length() -> None:
    token = signer.open_token(42)
    assert signer.verify_open(token).message_id == 42
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) >= MAC_BYTES + 4 and MAC_BYTES * 8 >= 128


def test_click_round_trip_keeps_destination() -> None:
    url = "https://example.com/p?a=1&b=%C3%A9#frag"
    got = signer.verify_click(signer.click_token(7, 3, url))
    assert (got.message_id, got.position, got.url) == (7, 3, url)


def test_tokens_are_purpose_bound() -> None:
    with pytest.raises(TokenError, match="purpose"):
        signer.verify_click(signer.open_token(1))
    with pytest.raises(TokenError, match="purpose"):
        signer.verify_open(signer.click_token(1, 1, "https://example.com/"))
    # Flipping the purpose byte is not enough either: the MAC is namespaced.
    raw = bytearray(base64.urlsafe_b64decode(signer.open_token(1) + "=="))
    raw[1] = ord("c")
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        signer.verify_click(flipped)


def _standard_alphabet() -> str:
    """A valid token re-encoded with '+' and '/' instead of '-' and '_'."""
    for mid in range(1000):
        token = signer.open_token(mid)
        if "-" in token or "_" in token:
            return token.replace("-", "+").replace("_", "/")
    raise AssertionError("no token with - or _ in 1000 tries")


def _forgeries() -> list[tuple[str, str]]:
    good = signer.open_token(12345)
    other_key = Signer({1: KEY_B}).open_token(12345)
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))
    other_id = Signer({1: KEY_A}).open_token(12346)
    spliced = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(other_id + "==")[:-MAC_BYTES] + raw[-MAC_BYTES:]
        )
        .rstrip(b"=")
        .decode()
    )
    return [
        ("empty", ""),
        ("truncated", good[:-1]),
        ("truncated_half", good[: len(good) // 2]),
        ("extended", good + "A"),
        ("padded", good + "=="),
        ("standard_alphabet", _standard_alphabet()),
        ("wrong_key", other_key),
        ("mac_spliced_onto_other_id", spliced),
        ("not_base64", "!!!!"),
        ("upper_cased", good.upper() if good.upper() != good else good + "x"),
        ("huge", "A" * 10000),
    ]


@pytest.mark.parametrize(("case", "token"), _forgeries(), ids=[c for c, _ in _forgeries()])
def test_forged_and_damaged_tokens_never_verify(case: str, token: str) -> None:
    with pytest.raises(TokenError):
        signer.verify_open(token)


def test_rotation_keeps_old_tokens_working() -> None:
    old = Signer({1: KEY_A})
    token = old.open_token(5)
    rotated = Signer({1: KEY_A, 2: KEY_B})
    assert rotated.current == 2
    assert rotated.verify_open(token).message_id == 5
    assert rotated.verify_open(rotated.open_token(6)).kid == 2
    retired = Signer({2: KEY_B})
    with pytest.raises(TokenError, match="unknown key"):
        retired.verify_open(token)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/", True),
        ("http://example.com/path?q=1", True),
        ("HTTPS://EXAMPLE.COM/", True),
        ("https://exämple.com/ü", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("ftp://example.com/file", False),
        ("mailto:a@example.com", False),
        ("/relative/path", False),
        ("//example.com/protocol-relative", False),
        ("https:///no-host", False),
        ("https://example.com/a b", False),
        ("https://example.com/\r\nSet-Cookie:x", False),
        ("https://example.com/" + "a" * 5000, False),
    ],
)
def test_only_http_destinations_can_be_signed(url: str, ok: bool) -> None:
    if ok:
        assert check_destination(url) == url
        assert signer.verify_click(signer.click_token(1, 1, url)).url == url
    else:
        with pytest.raises(DestinationError):
            signer.click_token(1, 1, url)


def test_repair_candidates_undo_scanner_mutations() -> None:
    good = signer.open_token(9)
    for damaged in (good + "%27", good + "'", "track/" + good, good + "%27%27"):
        assert any(
            signer.verify_open(c).message_id == 9
            for c in repair_candidates(damaged)
            if _verifies(c)
        ), damaged


def _verifies(token: str) -> bool:
    try:
        signer.verify_open(token)
        return True
    except TokenError:
        return False


urls = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x2FFF).filter(lambda c: c != "\x7f"),
        max_size=80,
    ),
)


@settings(max_examples=300)
@given(st.integers(0, 2**63), st.integers(0, 10_000), urls)
def test_click_codec_round_trips(message_id: int, position: int, url: str) -> None:
    got = signer.verify_click(signer.click_token(message_id, position, url))
    assert (got.message_id, got.position, got.url) == (message_id, position, url)


@settings(max_examples=300)
@given(st.integers(0, 2**63), st.data())
def test_any_single_character_change_is_rejected(message_id: int, data: st.DataObject) -> None:
    token = signer.open_token(message_id)
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[i]))
    with pytest.raises(TokenError):
        signer.verify_open(token[:i] + ch + token[i + 1 :])


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_random_bytes_never_verify(blob: bytes) -> None:
    token = base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        signer.verify_open(token)
    with pytest.raises(TokenError):
        signer.verify_click(token)


def _documented_open_token(key: bytes, kid: int, message_id: int) -> str:
    """An open token built by the format in the module docstring, with the
    standard library's HMAC: what mail sent by any version carries."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(out)

    body = bytes((1, ord("o"))) + varint(kid) + varint(message_id)
    mac = hmac.new(key, b"mailbeacon.open\x00" + body, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


@settings(max_examples=200)
@given(st.binary(max_size=150), st.integers(0, 300), st.integers(0, 2**63))
def test_tokens_match_the_standard_hmac(key: bytes, kid: int, message_id: int) -> None:
    # Keys of every length, also longer than SHA-256's 64-byte block (hashed first).
    token = _documented_open_token(key, kid, message_id)
    ring = Signer({kid: key})
    assert ring.open_token(message_id) == token
    assert ring.verify_open(token).message_id == message_id
