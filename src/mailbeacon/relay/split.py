"""One submitted message, one copy per recipient (pure: no I/O).

``prepare`` cleans the submission once: it removes our control headers
(``X-Mailbeacon-Track``, ``X-Mailbeacon-Campaign``) and any ``Bcc:`` line,
and adds a ``Message-ID`` when the client sent none. It splices the header
block as bytes, so every other header keeps its exact bytes and folding
(what DKIM, applied by the upstream, and the recipients' clients see).

``make_copy`` instruments the cleaned message for one recipient with the
byte-preserving ``.eml`` instrumenter. Tokens are deterministic (message id,
link position and URL under the signing key), so a copy can be made again
from the stored submission at any later retry and comes out the same.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from mailbeacon.instrument import instrument_eml
from mailbeacon.instrument.mime import Text, read_text, walk
from mailbeacon.instrument.pixel import pixel_img
from mailbeacon.instrument.prepared import prepare_eml
from mailbeacon.messages import click_url, open_url
from mailbeacon.store.messages import CAMPAIGN_NAME_MAX
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon.relay")

TRACK_HEADER = "X-Mailbeacon-Track"
CAMPAIGN_HEADER = "X-Mailbeacon-Campaign"
_REMOVED = (TRACK_HEADER.lower(), CAMPAIGN_HEADER.lower(), "bcc")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.M)  # RFC 5322 field name, at a line start
_PARSER = BytesHeaderParser(policy=compat32)

# What each mode asks of the instrumenter: (pixel?, clicks mode). Tracked
# links always use the safe mode: a link whose visible text is a URL stays.
MODES: dict[str, tuple[bool, str]] = {
    "opens": (True, "off"),
    "clicks": (False, "safe"),
    "all": (True, "safe"),
}


def tracks_clicks(mode: str) -> bool:
    return mode in MODES and MODES[mode][1] != "off"


@dataclass(frozen=True)
class Prepared:
    data: bytes  # the cleaned message every copy is made from
    header_block: bytes  # data's headers, up to the blank line (kept for a DSN)
    track: str | None  # X-Mailbeacon-Track, validated; None: the sender's default
    campaign: str | None
    message_id_header: str
    subject: str | None
    from_addresses: tuple[str, ...]  # lowercased addr-specs of From:


def _header_end(data: bytes) -> int:
    """Offset just after the header block's last line (before the blank line)."""
    if data.startswith((b"\r\n", b"\n")):
        return 0
    m = _HEADER_END.search(data)
    if m is None:
        return len(data)
    return m.start() + (2 if data[m.start() : m.start() + 2] == b"\r\n" else 1)


def _fields(block: bytes) -> list[tuple[str, int, int]]:
    """(lowercased name, start, end) of each header field, folded lines included."""
    starts = [(m.group(1).decode("ascii").lower(), m.start()) for m in _FIELD.finditer(block)]
    out = []
    for i, (name, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(block)
        out.append((name, start, end))
    return out


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(make_header(decode_header(value))).strip()
    except (ValueError, LookupError, UnicodeError):
        return value.strip()


def prepare(raw: bytes, domain: str = "mailbeacon.invalid") -> Prepared:
    end = _header_end(raw)
    block = raw[:end]
    headers: Message = _PARSER.parsebytes(block)
    track = (headers.get(TRACK_HEADER) or "").strip().lower() or None
    if track is not None and track not in ("off", *MODES):
        track = None  # an unknown value: the sender's default, never an error
    campaign = _text(headers.get(CAMPAIGN_HEADER)) or None
    eol = b"\r\n" if b"\r\n" in block or not block else b"\n"
    fields = _fields(block)
    kept = [block[s:e] for name, s, e in fields if name not in _REMOVED]
    prefix = block[: fields[0][1]] if fields else block
    message_id = (headers.get("Message-ID") or "").strip()
    if not message_id:
        # RFC 5322 3.6.4: unique, in angle brackets; the sender's domain
        # keeps it looking like the sender's own.
        message_id = f"<{int(time.time())}.{secrets.token_hex(12)}@{domain}>"
        kept.append(b"Message-ID: " + message_id.encode("ascii") + eol)
    new_block = prefix + b"".join(kept)
    data = raw if new_block == block else new_block + raw[end:]
    froms = tuple(
        addr.strip().lower() for _, addr in getaddresses(headers.get_all("From") or []) if addr
    )
    return Prepared(
        data=data,
        header_block=new_block,
        track=track,
        campaign=campaign[:CAMPAIGN_NAME_MAX] if campaign else None,
        message_id_header=message_id[:998],
        subject=_text(headers.get("Subject")),
        from_addresses=froms,
    )


_IMG = re.compile(r"<img\b", re.I)
# SpamAssassin 4.0 (20_html_tests.cf, HTMLEval.pm): HTML_IMAGE_ONLY_04.._32
# hit an HTML part that contains any <img> start tag and whose decoded text,
# markup and comments included, is at most 3,200 characters (bins of 400;
# 0.6 to 2.8 points with local rules). A longer part may have an <img> for free.
IMAGE_ONLY_MAX = 3200


def html_parts(data: bytes) -> list[str]:
    """The decoded text of each HTML part the instrumenter puts a pixel in
    (characters, as SpamAssassin counts them)."""
    out = []
    for part in walk(data):
        if part.content_type == "text/html" and not part.attachment:
            got = read_text(data, part)
            if isinstance(got, Text):
                out.append(got.text)
    return out


@dataclass(frozen=True)
class HtmlFacts:
    """What decides a message's pixel markup (the same for all its copies)."""

    shortest: int | None  # characters of the shortest HTML part with a pixel; None: no such part
    has_image: bool  # one of those parts already shows an <img>


def html_facts(data: bytes) -> HtmlFacts:
    try:
        parts = html_parts(data)
    except Exception:  # noqa: BLE001 - undecidable: the markup that adds no rule hit
        parts = []
    return HtmlFacts(min((len(p) for p in parts), default=None), any(_IMG.search(p) for p in parts))


def relay_pixel(src: str, facts: HtmlFacts) -> str:
    """The pixel markup for a relay copy: an <img> wherever it costs no
    SpamAssassin rule, else a background the rules do not see.

    * Every HTML part longer than 3,200 characters with the pixel: ``<img>``,
      which every client that shows images loads.
    * A part already shows an image (a signature logo): ``<img>``; the
      message has its HTML_IMAGE_ONLY hit already.
    * Otherwise (short image-less mail, most 1-to-1 mail) an <img> would add
      HTML_IMAGE_ONLY_xx, so the pixel is a 1x1 table background (attribute
      and CSS: Apple Mail, Gmail, Outlook for Mac/iOS/Android/web, Yahoo,
      Thunderbird...) plus an <img> inside an ``[if mso]`` conditional
      comment for Outlook on Windows, which shows no backgrounds; to
      SpamAssassin's HTML parser a comment is not a tag. docs/relay.md has
      the measurements and the clients this misses.
    """
    img = pixel_img(src)
    if facts.has_image or (
        facts.shortest is not None and facts.shortest + len(img) > IMAGE_ONLY_MAX
    ):
        return img
    esc = html.escape(src)
    return (
        '<table role="presentation" width="1" height="1" cellpadding="0" cellspacing="0" '
        f'border="0" background="{esc}" style="width:1px;height:1px;'
        f"background-image:url('{esc}');\"><tr><td>"
        f"<!--[if mso]>{img}<![endif]--></td></tr></table>"
    )


@dataclass(frozen=True)
class Copy:
    data: bytes
    links: list[tuple[int, str]]
    tracked: bool  # False: relayed unchanged (mode off, no HTML part, or unparseable)


def make_copy(
    data: bytes,
    mode: str,
    message_id: int,
    signer: Signer,
    base_url: str,
    facts: HtmlFacts | None = None,
) -> Copy:
    """The copy for message ``message_id``; never raises (unchanged on any failure)."""
    if mode not in MODES:
        return Copy(data, [], False)
    pixel, clicks = MODES[mode]

    def track(url: str, position: int) -> str:
        return click_url(base_url, signer, message_id, position, url)

    try:
        res = instrument_eml(
            data,
            track=track,
            pixel_html=(
                relay_pixel(open_url(base_url, signer, message_id), facts or html_facts(data))
                if pixel
                else ""
            ),
            clicks=clicks,  # type: ignore[arg-type]
            tracked_prefixes=(base_url + "/c/",),
        )
    except Exception:
        log.warning("message %s: instrumenter failed, relayed unchanged", message_id, exc_info=True)
        return Copy(data, [], False)
    if res.html_parts == 0:
        return Copy(data, [], False)
    return Copy(res.eml, list(res.links), True)


def copy_maker(data: bytes, mode: str, signer: Signer, base_url: str) -> Callable[[int], Copy]:
    """``make_copy`` for each copy of one message (the same bytes), reading
    the message once: the MIME walk, decoding the HTML and planning its
    links are the same for every copy, only signing and splicing are not
    (instrument/prepared.py). Per copy of bench/relay.py's 82 KB newsletter
    that cut 5 ms to 1 ms on the loaded bench machine, and the pixel's
    markup facts come from the same reading. Safe to call from several
    threads (the lanes of relay/upstream.py send_all)."""
    if mode not in MODES:
        return lambda _mid: Copy(data, [], False)
    pixel, clicks = MODES[mode]
    try:
        # A copy's skipped links are never shown: in `opens` the links are not read.
        prepared = prepare_eml(
            data,
            clicks=clicks,  # type: ignore[arg-type]
            tracked_prefixes=(base_url + "/c/",),
            skipped=False,
        )
    except Exception:
        log.warning("instrumenter failed, message relayed unchanged", exc_info=True)
        return lambda _mid: Copy(data, [], False)
    texts = prepared.html_texts
    facts = HtmlFacts(
        min((len(t) for t in texts), default=None), any(_IMG.search(t) for t in texts)
    )

    def make(message_id: int) -> Copy:
        def track(url: str, position: int) -> str:
            return click_url(base_url, signer, message_id, position, url)

        src = relay_pixel(open_url(base_url, signer, message_id), facts) if pixel else ""
        try:
            res = prepared.render(track=track, pixel_html=src)
        except Exception:
            log.warning("message %s: instrumenter failed, relayed unchanged", message_id,
                        exc_info=True)  # fmt: skip
            return Copy(data, [], False)
        if res.html_parts == 0:
            return Copy(data, [], False)
        return Copy(res.eml, list(res.links), True)

    return make
