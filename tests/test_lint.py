"""The deliverability lint: one row per finding, with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.instrument import Finding, lint
from mailbeacon.instrument.lint import registrable

EMAILS = Path(__file__).parent / "data" / "emails"
T = "https://t.example.com"


def codes(findings: list[Finding]) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in findings]


CASES: list[tuple[str, dict[str, str], list[tuple[int, str]]]] = [
    ("<p>Hello there, a plain and clean mail with enough words to count as text.</p>", {}, []),
    (
        '<p>x</p>\n<a href="https://evil.example/login">www.paypal.com</a>',
        {},
        [(2, "domain-mismatch")],
    ),
    ('<a href="https://www.paypal.com/x">paypal.com</a>', {}, []),
    (
        '<p>line</p>\n\n<a href="https://t.example.com/c/TOKEN">https://shop.example/</a>',
        {"tracking_base_url": T},
        [(3, "domain-mismatch")],
    ),
    (
        '<a href="https://t.example.com/c/TOKEN">Read</a>',
        {"tracking_base_url": T, "from_domain": "news.example.com"},
        [],
    ),
    (
        '<p>a</p>\n<a href="https://t.other.net/c/TOKEN">Read</a>',
        {"tracking_base_url": "https://t.other.net", "from_domain": "shop.co.uk"},
        [(2, "tracking-domain-unaligned")],
    ),
    (
        "\n".join(f'<a href="https://a.example/{i}">l{i}</a>' for i in range(22)),
        {},
        [(21, "many-links")],
    ),
    ('<p>hi</p>\n<img src="https://cdn.example/banner.jpg" width="600">', {}, [(1, "image-only")]),
    (
        '<a href="https://bit.ly/abc">Go</a>\n<a href="https://tinyurl.com/x">Go</a>',
        {},
        [(1, "url-shortener"), (2, "url-shortener")],
    ),
    (
        '<div style="display: none">\n<table><tr><td>'
        '<img src="https://t.example.com/o/abc.gif" width="1" height="1"></td></tr></table></div>',
        {"tracking_base_url": T},
        [(2, "hidden-pixel")],
    ),
    (
        '<div style="display:none">hidden</div><img src="x.gif" width=1 height=1>'
        + "<p>"
        + "text " * 50
        + "</p>",
        {},
        [],
    ),
]


@pytest.mark.parametrize(("src", "kw", "expected"), CASES)
def test_lint_html(src: str, kw: dict[str, str], expected: list[tuple[int, str]]) -> None:
    assert codes(lint(src, **kw)) == expected


def test_lint_eml_no_text_part_and_from_domain() -> None:
    src = (EMAILS / "html-only-8bit-utf8.eml").read_text("utf-8")
    found = codes(lint(src, tracking_base_url="https://t.studio.example"))
    assert found == [(1, "no-text-part")]
    # Not instrumented yet: nothing uses the tracking domain, nothing to align.
    found = codes(lint(src, tracking_base_url="https://track.elsewhere.example"))
    assert found == [(1, "no-text-part")]
    tracked = src.replace("https://docs.studio.example/", "https://track.elsewhere.example/c/")
    found = codes(lint(tracked, tracking_base_url="https://track.elsewhere.example"))
    assert found == [(1, "no-text-part"), (1, "tracking-domain-unaligned")]


def test_lint_eml_base64_part_reports_part_line() -> None:
    src = (
        (EMAILS / "mixed-related-base64-cp1252.eml").read_bytes().decode("utf-8", "surrogateescape")
    )
    found = lint(src, tracking_base_url="https://t.shop.example")
    assert ("url-shortener" in {f.code for f in found}) and (
        "no-text-part" not in {f.code for f in found}
    )
    short = next(f for f in found if f.code == "url-shortener")
    assert short.line == 24 and "decoded base64 part" in short.message


def test_lint_newsletter() -> None:
    src = (EMAILS / "newsletter-60k.html").read_text("utf-8")
    found = codes(lint(src, tracking_base_url=T, from_domain="acme-shop.example"))
    assert ("many-links" in {c for _, c in found}) and (
        "domain-mismatch" not in {c for _, c in found}
    )


@pytest.mark.parametrize(
    ("host", "reg"),
    [
        ("t.example.com", "example.com"),
        ("a.b.shop.co.uk", "shop.co.uk"),
        ("example.com", "example.com"),
    ],
)
def test_registrable(host: str, reg: str) -> None:
    assert registrable(host) == reg


def test_lint_reads_a_multipart_with_no_closing_boundary() -> None:
    # The text part comes last and the close delimiter never does: it is still a part.
    src = (
        b'From: a@b.test\nContent-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/html\n\n<p>" + b"words " * 50 + b"</p>\n"
        b"--b\nContent-Type: text/plain\n\nthe text\n"
    )
    assert codes(lint(src)) == []


NEW_CASES: list[tuple[str, dict[str, str], list[tuple[int, str]]]] = [
    # Link text that only looks like a URL: .url is no top-level domain.
    (
        '<a href="https://sendgrid.com">https://same-link-as-button.url/xxx-xxx-xxxx</a>',
        {},
        [],
    ),
    (
        '<a href="https://evil.example/x">https://www.paypal.co.uk/login</a>',
        {},
        [(1, "domain-mismatch")],
    ),
    # An original not instrumented yet has nothing to align...
    (
        '<p>a</p>\n<a href="https://shop.example/">Shop</a>',
        {"tracking_base_url": "https://t.other.net", "from_domain": "shop.example"},
        [],
    ),
    # ...an instrumented one has, and the pixel counts as using the domain.
    (
        '<p>a</p>\n<img src="https://t.other.net/o/TOKEN.gif" width="1" height="1">',
        {"tracking_base_url": "https://t.other.net", "from_domain": "shop.example"},
        [(2, "tracking-domain-unaligned")],
    ),
    (
        '<p>x</p>\n<a href="https://x.example/?id={{id}}">A</a>\n<a href="*|ARCHIVE|*">B</a>',
        {},
        [(2, "placeholder-in-link"), (3, "placeholder-in-link")],
    ),
    ("<p>" + "words and more words " * 5200 + "</p>", {}, [(1, "gmail-clipping")]),
]


@pytest.mark.parametrize(("src", "kw", "expected"), NEW_CASES)
def test_lint_findings_issue_11(
    src: str, kw: dict[str, str], expected: list[tuple[int, str]]
) -> None:
    assert codes(lint(src, **kw)) == expected


def test_lint_names_each_placeholder() -> None:
    found = lint('<a href="https://x.example/?id={{id}}">A</a>')
    assert found[0].message == "{{id}} in https://x.example/?id={{id}}: left untracked"


def test_lint_eml_long_lines_and_parts_left_alone() -> None:
    src = (
        b"From: a@b.test\nContent-Type: multipart/alternative; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\n" + b"t" * 1200 + b"\n"
        b"--b\nContent-Type: text/html; charset=x-no-such\n\n<p>"
        + b"words " * 50
        + b"</p>\n--b--\n"
    )
    found = lint(src)
    assert codes(found) == [(7, "line-too-long"), (11, "part-left-alone")]
    assert "1,200 bytes" in found[0].message
    assert "unknown charset 'x-no-such'" in found[1].message
