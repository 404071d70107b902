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
