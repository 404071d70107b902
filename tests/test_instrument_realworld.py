"""Every file of the real-world corpus, instrumented in modes "all" and "safe".

For each: the bytes outside the edits are identical (line endings too); each
HTML body gets exactly one pixel, or the result says why none; every tracked
link decodes, with the Signer, to the URL its href held; a message keeps its
headers, boundaries and other parts byte for byte, parses with the ``email``
package with no defect it did not have, and has no line over 998 bytes that
it did not have. The corpus lives beside the repository (tests/realworld.py).
"""

from __future__ import annotations

import email
import re
import secrets
from email.policy import compat32
from pathlib import Path
from urllib.parse import urljoin

import pytest

from mailbeacon.instrument import instrument_eml, instrument_html, pixel_img, plan_links
from mailbeacon.instrument.detect import decode_html
from mailbeacon.instrument.links import clean_url
from mailbeacon.instrument.mime import walk
from mailbeacon.instrument.tokenizer import unescape_attr
from mailbeacon.tokens import Signer
from tests import realworld

BASE = "https://t.example.com"
MESSAGE_ID = 4242
SIGNER = Signer({1: secrets.token_bytes(32)})
PIXEL = pixel_img(f"{BASE}/o/{SIGNER.open_token(MESSAGE_ID)}.gif")
# The pixel, allowing the line break a 7bit/8bit part may get in it (one
# before it is an inserted break like any other, see _consume).
PIXEL_RE = re.compile(r"<img(?:\r?\n)? src=\"" + re.escape(PIXEL[len('<img src="') :]))
TRACKED = re.compile(r"([\"']?)" + re.escape(BASE) + r"/c/([A-Za-z0-9_-]+)\1")
_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]*")
MODES = ("all", "safe")

pytestmark = pytest.mark.skipif(realworld.corpus_dir() is None, reason=realworld.missing_reason())


def track(url: str, position: int) -> str:
    return f"{BASE}/c/{SIGNER.click_token(MESSAGE_ID, position, url)}"


def check_text(before: str, after: str, links: dict[int, str], eol: str | None) -> int:
    """``after`` is ``before`` plus one pixel and tracked href values, nothing
    else (but line breaks ``fold`` put in where ``eol`` is given). Every
    tracked value decodes to the URL the original value held. Returns how
    many tracked values there were."""
    pixels = list(PIXEL_RE.finditer(after))
    assert len(pixels) == 1, f"{len(pixels)} pixels"
    after = after[: pixels[0].start()] + after[pixels[0].end() :]
    base = plan_links(before).base
    pos = 0
    last = 0
    count = 0
    for m in TRACKED.finditer(after):
        pos = _consume(after[last : m.start()], before, pos, eol)
        value = _VALUE.match(before, pos)
        assert value is not None
        raw = value.group(0)
        raw = raw[1:-1] if raw[:1] in "\"'" and len(raw) > 1 else raw
        original = urljoin(base or "", clean_url(unescape_attr(raw)))
        token = SIGNER.verify_click(m.group(2))
        assert token.message_id == MESSAGE_ID and token.url == original
        assert links[token.position] == original
        pos = value.end()
        last = m.end()
        count += 1
    pos = _consume(after[last:], before, pos, eol)
    assert pos == len(before)
    return count


def _consume(piece: str, src: str, pos: int, eol: str | None) -> int:
    """Where ``src`` continues after ``piece``, which must match it from ``pos``
    except for inserted ``eol`` line breaks."""
    if src.startswith(piece, pos):
        return pos + len(piece)
    i = 0
    while i < len(piece):
        if src.startswith(piece[i], pos):
            i, pos = i + 1, pos + 1
            continue
        assert eol is not None and piece.startswith(eol, i), (pos, piece[i : i + 60])
        i += len(eol)
    return pos


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", realworld.html_files(), ids=lambda p: p.name)
def test_html_template(path: Path, mode: str) -> None:
    data = path.read_bytes()
    text, codec = decode_html(data)
    res = instrument_html(text, track=track, pixel_html=PIXEL, clicks=mode)  # type: ignore[arg-type]
    out = res.html.encode(codec, "surrogateescape")
    back = res.html.replace(PIXEL, "", 1)
    # Line endings and every byte outside the edits: the input, encoded back.
    assert back.count("\r\n") == text.count("\r\n") and out.count(b"\r") == data.count(b"\r")
    assert res.pixel is not None
    check_text(text, res.html, dict(res.links), None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", realworld.eml_files(), ids=lambda p: p.name)
def test_message(path: Path, mode: str) -> None:
    data = path.read_bytes()
    res = instrument_eml(data, track=track, pixel_html=PIXEL, clicks=mode)  # type: ignore[arg-type]
    out = res.eml
    links = dict(res.links)
    before_parts, after_parts = list(walk(data)), list(walk(out))
    assert [p.content_type for p in before_parts] == [p.content_type for p in after_parts]
    texts_before = dict(realworld.html_part_texts(data))
    texts_after = dict(realworld.html_part_texts(out))
    # Put every changed body back: what remains must be the input, byte for byte
    # (headers, preamble, boundaries, epilogue, every other part, line endings).
    restored = out
    changed = []
    for old, new in reversed(list(zip(before_parts, after_parts, strict=True))):
        if out[new.body_start : new.body_end] != data[old.body_start : old.body_end]:
            changed.append(old.ordinal)
            assert old.content_type == "text/html" and not old.attachment
            restored = (
                restored[: new.body_start]
                + data[old.body_start : old.body_end]
                + restored[new.body_end :]
            )
    assert restored == data
    # Each changed HTML part reads as before plus one pixel and tracked hrefs.
    tracked = 0
    for ordinal in changed:
        part = before_parts[ordinal - 1]
        eol = None
        if part.encoding not in ("quoted-printable", "base64"):
            eol = "\r\n" if "\r\n" in texts_before[ordinal].text else "\n"
        tracked += check_text(texts_before[ordinal].text, texts_after[ordinal].text, links, eol)
    assert len(changed) == res.html_parts == len(res.pixels)
    assert tracked >= len(links) and all(n in links for n in range(1, len(links) + 1))
    if not changed:
        assert res.no_pixel, "no pixel and no reason given"
    for ordinal, _ in texts_before.items():
        if ordinal not in changed and not before_parts[ordinal - 1].attachment:
            assert any(f"part {ordinal} " in note for note in res.notes), res.notes
    # It parses, with no defect it did not have, and no new over-long line.
    assert _defects(out) <= _defects(data)
    assert _long_lines(out) <= _long_lines(data)
    assert texts_after.keys() == texts_before.keys()


def _defects(data: bytes) -> int:
    msg = email.message_from_bytes(data, policy=compat32)
    count = 0
    for part in msg.walk():
        count += len(part.defects)
        if not part.is_multipart():
            part.get_payload(decode=True)
    return count


def _long_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if len(line.rstrip(b"\r")) > 998)


def test_the_corpus_is_all_there() -> None:
    # SOURCES.md lists 89 templates and 59 messages; a partial copy would pass quietly.
    assert len(realworld.html_files()) >= 89 and len(realworld.eml_files()) >= 59
