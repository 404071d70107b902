"""The IMAP URL a mailbox is added with (pure)."""

from __future__ import annotations

import pytest

from mailbeacon.mailboxes.url import BadURL, parse


@pytest.mark.parametrize(
    "url,want",
    [
        ("imap://ana:pw@mail.example.com:143", ("starttls", 143, "ana", "pw")),
        ("imap://ana:pw@mail.example.com", ("starttls", 143, "ana", "pw")),
        (
            "imap://ana%40example.com:p%40ss@127.0.0.1:1143?tls=none",
            ("none", 1143, "ana@example.com", "p@ss"),
        ),
        ("imaps://ana:pw@mail.example.com", ("implicit", 993, "ana", "pw")),
        ("IMAPS://ana:pw@mail.example.com:10993", ("implicit", 10993, "ana", "pw")),
    ],
)
def test_parse(url: str, want: tuple[str, int, str, str]) -> None:
    u = parse(url)
    assert (u.tls, u.port, u.user, u.password) == want
    assert "pw" not in u.public and "p%40ss" not in u.public
    assert parse(u.public, u.password) == u  # the stored form opens with the sealed password


@pytest.mark.parametrize(
    "url,says",
    [
        ("pop3://a:b@h", "unsupported scheme"),
        ("imap://h:143", "user and a host"),
        ("imap://ana@h:143", "password"),
        ("imap://a:b@h:143?tls=off", "?tls=none"),
        ("imaps://a:b@h?tls=none", "TLS from the first byte"),
        ("imap://a:b@h:99999", "not a URL"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, says: str) -> None:
    with pytest.raises(BadURL, match=r"(?s).*" + says.replace("?", r"\?")):
        parse(url)
