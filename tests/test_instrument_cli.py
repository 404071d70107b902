"""`mailbeacon instrument` on real-world bytes: line endings, charsets, stdin,
content detection, and what it says it did."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE = "https://t.example.com"
PIXEL = re.compile(rb'<img src="https://t\.example\.com/o/[A-Za-z0-9_-]+\.gif"[^>]*>')


def run(
    *args: str, db: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """`python -m mailbeacon` with bytes in and out (the shared helper decodes text)."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "mailbeacon", "--db", db, *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr.decode("utf-8", "replace"))
    return proc


def without_pixel(out: bytes) -> bytes:
    assert len(PIXEL.findall(out)) == 1, out[-400:]
    return PIXEL.sub(b"", out)


CRLF_HTML = (
    b"<!doctype html>\r\n<html><body>\r\n<p>Gr\xfc\xdfe</p>\r\n"  # latin-1 bytes, no charset
    b'<a href="https://example.com/p">Pricing</a>\r\n</body></html>\r\n'
)
CRLF_EML = (
    b"From: Ana <ana@example.com>\r\nTo: M\xfcller <m@example.org>\r\nSubject: hi\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    b"<html><body><p>Gr\xfc\xdfe</p>\r\n</body></html>\r\n"
)


@pytest.mark.parametrize(("name", "data"), [("t.html", CRLF_HTML), ("t.eml", CRLF_EML)])
def test_output_differs_only_by_the_pixel_line_endings_included(
    name: str, data: bytes, sqlite_url: str, tmp_path: Path
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / ("out-" + name)
    common = ("--to", "r@example.org", "--clicks", "off", "--base-url", BASE)
    run("instrument", str(src), *common, "--out", str(out), db=sqlite_url)
    assert without_pixel(out.read_bytes()) == data
    # The same through standard input and output.
    res = run("instrument", "-", *common, db=sqlite_url, stdin=data)
    assert without_pixel(res.stdout) == data


MBOX_QP = (
    b"From ana@example.com Mon Jan  1 00:00:00 2024\n"
    + b"".join(b"Received: from relay%d.example.net by mx.example.org; Mon, 1 Jan 2024\n" % i
               for i in range(40))
    + b"From: ana@example.com\nSubject: hi\nMIME-Version: 1.0\n"
    b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    b"<html><body><p style=3D\"margin:0\">hi</p></body></html>\n"
)  # fmt: skip


def test_stdin_message_is_recognised_by_its_content(sqlite_url: str) -> None:
    common = ("--to", "r@example.org", "--clicks", "off", "--base-url", BASE)
    out = run("instrument", "-", *common, db=sqlite_url, stdin=MBOX_QP).stdout
    # Treated as a message: the pixel is quoted-printable inside the part
    # (src=3D"...), and the 2.7 KB of headers and the From line are intact.
    head = MBOX_QP.split(b"\n\n", 1)[0]
    assert out.startswith(head + b"\n\n") and b'<img src="' not in out
    html = email.message_from_bytes(out).get_payload(decode=True)
    assert PIXEL.search(html) and html.startswith(b'<html><body><p style="margin:0">')
    # --format html overrides: the same bytes as one HTML document.
    forced = run("instrument", "-", *common, "--format", "html", db=sqlite_url, stdin=MBOX_QP)
    assert without_pixel(forced.stdout) == MBOX_QP
    bad = run("instrument", "-", *common, "--format", "pdf", db=sqlite_url, stdin=b"", check=False)
    assert bad.returncode == 2 and b"--format is auto, eml or html" in bad.stderr


def destinations(data: bytes, db: str) -> list[str]:
    """Where every tracked link in ``data`` redirects, decoded with the signer."""
    from mailbeacon.store import keys, make_engine

    engine = make_engine(db)
    try:
        signer = keys.ensure_signer(engine)
    finally:
        engine.dispose()
    tokens = re.findall(rb"https://t\.example\.com/c/([A-Za-z0-9_-]+)", data)
    return [signer.verify_click(t.decode()).url for t in tokens]


TEMPLATE = (
    b"<html><body><p>Hi {{ name }}</p>\n"
    b'<a href="https://example.com/offer?c={{ code }}">Offer</a>\n'
    b'<a href="https://example.com/p">Pricing</a>\n'
    b'<a href="*|UNSUB|*">Leave</a>\n</body></html>\n'
)


def test_cli_says_what_it_did_and_names_each_link_left_alone(
    sqlite_url: str, tmp_path: Path
) -> None:
    src = tmp_path / "t.html"
    src.write_bytes(TEMPLATE)
    res = run("instrument", str(src), "--to", "a@example.org", "--base-url", BASE, db=sqlite_url)
    said = res.stderr.decode()
    assert "pixel added (before </body>); 1 links tracked, 2 left alone" in said
    assert "left alone (placeholder {{ code }}): https://example.com/offer?c={{ code }}" in said
    assert "left alone (placeholder *|UNSUB|*): *|UNSUB|*" in said
    assert destinations(res.stdout, sqlite_url) == ["https://example.com/p"]


def test_batch_fills_its_placeholders_first_then_tracks(sqlite_url: str, tmp_path: Path) -> None:
    src = tmp_path / "t.html"
    src.write_bytes(TEMPLATE)
    people = tmp_path / "people.csv"
    people.write_text("email,name,code\na@example.org,Ana,A1\nb@example.org,Bo,B2\n")
    out = tmp_path / "out"
    args = ("--recipients", str(people), "--out", str(out), "--base-url", BASE)
    res = run("instrument", str(src), *args, db=sqlite_url)
    first = sorted(out.iterdir())[0].read_bytes()
    # {{ code }} is ours to fill: filled, then tracked. *|UNSUB|* is another
    # tool's: left alone, and said so.
    assert destinations(first, sqlite_url) == [
        "https://example.com/offer?c=A1",
        "https://example.com/p",
    ]
    assert b'href="*|UNSUB|*"' in first
    assert "left alone (placeholder *|UNSUB|*)" in res.stderr.decode()


NO_PIXEL = [
    (
        b"From: a@b.test\nSubject: s\nContent-Type: text/plain\n\nJust text, https://a.test/\n",
        "NO pixel: the message has no HTML part",
        "",
    ),
    (
        b"From: a@b.test\nContent-Type: text/html; charset=x-no-such\n\n<p>x</p>\n",
        "NO pixel: every HTML part was left alone",
        "note: part 1 (text/html; charset=x-no-such): unknown charset 'x-no-such', left alone",
    ),
]


@pytest.mark.parametrize(("data", "line", "note"), NO_PIXEL)
def test_cli_says_when_there_is_no_pixel_and_why(
    data: bytes, line: str, note: str, sqlite_url: str
) -> None:
    res = run(
        "instrument", "-", "--to", "a@example.org", "--base-url", BASE, db=sqlite_url, stdin=data
    )
    assert res.stdout == data
    said = res.stderr.decode()
    assert line in said and note in said and "pixel added" not in said


def test_lint_says_the_tracking_domain_once_per_run(sqlite_url: str, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"m{i}.html"
        f.write_text(
            f'<p>Hello {i}, enough words to count as text.</p>\n<a href="{BASE}/c/T{i}">Read</a>'
        )
        files.append(str(f))
    original = tmp_path / "original.html"
    original.write_text(
        '<p>Hello, enough words to count as text.</p>\n<a href="https://shop.example/">Read</a>'
    )
    res = run(
        "lint", str(original), *files, "--base-url", BASE, "--from-domain", "shop.example",
        db=sqlite_url, check=False,
    )  # fmt: skip
    lines = res.stdout.decode().splitlines()
    assert res.returncode == 1
    assert lines == [
        f"{files[0]}:2: tracking-domain-unaligned: tracking domain t.example.com is not "
        "under the From domain shop.example"
    ]
