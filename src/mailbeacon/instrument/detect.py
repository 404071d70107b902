"""What a file holds (a whole message or an HTML body) and how its bytes read.

Both decisions come from the content, never from a file name: mail arrives
through standard input, from mbox exports and from tools that name files
whatever they like. On 122 real messages the old test ("ends in .eml" or
"Content-Type/MIME-Version in the first 2,000 characters") called 29 of them
HTML: their headers ran past 2 KB (long Received chains, DKIM) or started with
an mbox ``From `` line.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

import webencodings

Kind = Literal["eml", "html"]

# RFC 5322 field name: printable ASCII except ':' (33-57, 59-126), then ':'.
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
# Header fields that mark a mail message, as opposed to a text that happens to
# start with "Word:" (an HTML fragment never starts like that).
_MAIL_FIELDS = frozenset(
    b"from to cc subject date message-id mime-version content-type "
    b"received return-path delivered-to reply-to sender x-mailer".split()
)
_MAX_HEAD = 256 * 1024  # headers larger than this are not mail we can instrument anyway


def sniff(data: bytes) -> Kind:
    """``"eml"`` when ``data`` starts with RFC 5322 header fields (an mbox
    ``From `` line first is fine), else ``"html"``.

    A message is: optional ``From `` line, then header fields (continuation
    lines allowed) up to a blank line or the end, with at least one field that
    mail has (From, Subject, Content-Type, Received, ...). Anything starting
    with ``<`` (after a BOM and whitespace) is HTML.
    """
    pos = 3 if data.startswith(codecs.BOM_UTF8) else 0
    if data[pos : pos + 4096].lstrip(b" \t\r\n")[:1] == b"<":
        return "html"
    if data.startswith(b"From ", pos):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return "html"
        pos = nl + 1
    seen_mail_field = False
    fields = 0
    end = min(len(data), pos + _MAX_HEAD)
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line = data[pos : nl if nl >= 0 else end].rstrip(b"\r")
        if not line:
            break  # the blank line that ends the header block
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return "html"  # a continuation with nothing to continue
        else:
            m = _FIELD.match(line)
            if m is None:
                break  # no longer a header: the block ended without a blank line
            fields += 1
            seen_mail_field = seen_mail_field or line[: m.end() - 1].lower() in _MAIL_FIELDS
        if nl < 0:
            break
        pos = nl + 1
    return "eml" if seen_mail_field else "html"


_META_CHARSET = re.compile(
    rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]{1,40})", re.I
)


def decode_html(data: bytes) -> tuple[str, str]:
    """Text and codec of an HTML file such that
    ``text.encode(codec, "surrogateescape") == data`` always holds.

    UTF-8 when the bytes are valid UTF-8 (a BOM stays in the text as U+FEFF);
    else the ``<meta charset>`` of the first 1,024 bytes (the HTML standard's
    prescan window), read with the WHATWG label table (``webencodings``: it
    knows ``x-mac-cyrillic`` and reads ``iso-8859-1`` as windows-1252, like
    browsers); else UTF-8 with undecodable bytes kept as surrogates. A
    charset that does not give the same bytes back is not used.
    """
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    m = _META_CHARSET.search(data, 0, 1024)
    if m is not None:
        codec = python_codec(m.group(1).decode("ascii"))
        if codec is not None and codec != "utf-8":
            text = data.decode(codec, "surrogateescape")
            if text.encode(codec, "surrogateescape") == data:
                return text, codec
    return data.decode("utf-8", "surrogateescape"), "utf-8"


def python_codec(label: str | None) -> str | None:
    """The Python codec for a charset label as mail and web use it, or None.

    The WHATWG Encoding Standard's labels first (``x-mac-cyrillic``,
    ``ks_c_5601-1987``, ``x-sjis``...), then Python's own names (``utf-7``,
    ``iso-2022-jp`` and other labels browsers dropped but old mail still has).
    """
    if not label:
        return "utf-8"
    label = label.strip().strip("\"'")
    enc = webencodings.lookup(label)
    if enc is not None and enc.name != "replacement":
        return str(enc.codec_info.name)
    try:
        return codecs.lookup(label).name
    except LookupError:
        pass
    if label.lower().startswith("x-"):
        try:
            return codecs.lookup(label[2:]).name
        except LookupError:
            return None
    return None
