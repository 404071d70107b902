"""The HTML instrumenter: byte-level expectations on a corpus, the link rules
as a table, and a property test that nothing outside the edits ever changes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.instrument import (
    InstrumentResult,
    Skip,
    apply_plan,
    honeypot_html,
    instrument_html,
    plan_links,
)
from mailbeacon.instrument.tokenizer import unescape_attr

EMAILS = Path(__file__).parent / "data" / "emails"
PIXEL = '<img src="https://t.test/o/OPEN.gif" width="1" height="1" alt="">'
MARK = re.compile(r"https://t\.test/c/(\d+)")


def track(url: str, position: int) -> str:
    return f"https://t.test/c/{position}"


def read(name: str) -> str:
    return (EMAILS / name).read_bytes().decode("utf-8")


_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]*")
_MARKED = re.compile(
    r"\"https://t\.test/c/(\d+)\"|'https://t\.test/c/(\d+)'|https://t\.test/c/(\d+)"
)


def check_only_edits(src: str, res: InstrumentResult, inserted: str) -> None:
    """Independent of ``res.edits``: take the output, drop the one insertion,
    split it at every tracked value token, and require the input to be the
    same pieces with, between them, a value token that decodes to the URL
    tracked at that position."""
    out = res.html
    if inserted:
        assert out.count(inserted) == 1
        out = out.replace(inserted, "", 1)
    urls = dict(res.links)
    base = plan_links(src).base
    pieces = _MARKED.split(out)
    pos = 0
    for i in range(0, len(pieces), 4):
        piece = pieces[i]
        assert src.startswith(piece, pos), (pos, piece[:80])
        pos += len(piece)
        if i + 3 < len(pieces):
            position = int(next(p for p in pieces[i + 1 : i + 4] if p))
            m = _VALUE.match(src, pos)
            assert m is not None
            raw = m.group(0)
            raw = raw[1:-1] if raw[:1] in "\"'" and len(raw) > 1 else raw
            url = urljoin(base or "", unescape_attr(raw).strip())
            assert url == urls[position]
            pos = m.end()
    assert pos == len(src)


def revert(res: InstrumentResult) -> str:
    """Undo ``res.edits`` on the output."""
    out, pieces, shift = res.html, [], 0
    last = 0
    for start, end, new in res.edits:
        pieces.append(out[last : start + shift])
        last = start + shift + len(new)
        shift += len(new) - (end - start)
        pieces.append("\x00" * (end - start))  # placeholder: length of the old span
    pieces.append(out[last:])
    return "".join(pieces)


CORPUS = {
    "outlook-vml-button.html": (
        [(1, "https://shop.example/sale?utm_source=mail&utm_medium=email")],
        2,  # the VML href and its fallback <a> share one position
        {Skip.MAILTO, Skip.TEL},
    ),
    "legacy-upper-quotes.html": (
        [
            (1, "https://billing.example/invoice?id=42&utm_source=mail&utm_campaign=q3"),
            (2, "https://billing.example/pay?id=42&method=card"),
            (3, "https://billing.example/help?topic=vat"),
            (4, "https://billing.example/spaced"),
            (5, "https://billing.example/left?a=1&b=2"),
            (6, "https://billing.example/right"),
        ],
        6,
        {Skip.FRAGMENT, Skip.JAVASCRIPT, Skip.OPT_OUT, Skip.VISIBLE_URL, Skip.UNSUBSCRIBE},
    ),
    "base-href.html": (
        [
            (1, "https://news.example/issues/12/story.html?ref=mail"),
            (2, "https://news.example/archive"),
            (3, "https://cdn.example/pdf/issue12.pdf"),
            (4, "https://other.example/abs"),
        ],
        4,
        {Skip.FRAGMENT},
    ),
    "fragment-no-body.html": (
        [(1, "https://docs.example/proposal?v=2&lang=de")],
        1,
        {Skip.RELATIVE},
    ),
    "entities-in-urls.html": (
        [
            (1, "https://shop.example/p?a=1&utm_source=news&utm_medium=email"),
            (2, "https://shop.example/p?a=1&param=2&copy=3"),
            (3, "https://shop.example/p?q=café&x=1"),
        ],
        4,
        set(),
    ),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(name: str) -> None:
    src = read(name)
    links, occurrences, reasons = CORPUS[name]
    res = instrument_html(src, track=track, pixel_html=PIXEL, honeypot_url="https://t.test/c/hp")
    assert res.links == links
    assert {s.reason for s in res.skipped} == reasons
    assert len(MARK.findall(res.html)) == occurrences
    inserted = PIXEL + honeypot_html("https://t.test/c/hp")
    check_only_edits(src, res, inserted)
    # The edits list says the same: reverting it leaves only placeholders.
    back = revert(res)
    assert len(back) == len(src)
    assert all(b == s or b == "\x00" for b, s in zip(back, src, strict=True))


def test_newsletter_60k() -> None:
    src = read("newsletter-60k.html")
    res = instrument_html(src, track=track, pixel_html=PIXEL)
    assert [p for p, _ in res.links] == list(range(1, 31))
    assert res.links[0][1].startswith("https://www.acme-shop.example/?utm_source=newsletter&utm_")
    assert {s.reason for s in res.skipped} == {Skip.VISIBLE_URL, Skip.UNSUBSCRIBE, Skip.MAILTO}
    check_only_edits(src, res, PIXEL)
    # 14 VML buttons and their <a> fallbacks: 28 hrefs, 14 positions.
    assert len(MARK.findall(res.html)) == 1 + 14 * 3 + 1


def test_corpus_keeps_the_untouchable() -> None:
    src = read("outlook-vml-button.html")
    out = instrument_html(src, track=track, pixel_html=PIXEL).html
    for kept in (
        "<!--[if mso]>",
        "<![endif]-->",
        "<!--[if !mso]><!-- -->",
        '<a href="https://old.example/">gone</a>',
        '<a href="https://script.example/">tpl</a>',
        '<a href="https://cdata.example/">x</a>',
        '<a href="https://style.example/">not a link</a>',
        "<Body bgcolor=#ffffff>",
    ):
        assert kept in out
    assert out.index(PIXEL) == out.index("</Body>") - len(PIXEL)


def test_quote_styles_are_kept() -> None:
    src = "<a href='https://a.test/x'>a</a><a href=https://a.test/y>b</a><A HREF=\"https://a.test/z\">c</A>"
    out = instrument_html(src, track=lambda u, p: f"https://t.test/c/{p}_a&b", pixel_html="").html
    assert out == (
        "<a href='https://t.test/c/1_a&amp;b'>a</a>"
        "<a href=https://t.test/c/2_a&amp;b>b</a>"
        '<A HREF="https://t.test/c/3_a&amp;b">c</A>'
    )


@pytest.mark.parametrize("new", ["https://t.test/c/a b", "https://t.test/c/x?k=1", "", "a'b"])
def test_unquoted_value_is_quoted_only_when_it_must_be(new: str) -> None:
    # Unquoted values may not hold whitespace, quotes, = < > or ` (HTML syntax),
    # nor be empty: then, and only then, the new value is double-quoted.
    out = instrument_html(
        "<a href=https://a.test/y>b</a>", track=lambda u, p: new, pixel_html=""
    ).html
    escaped = new.replace("&", "&amp;")
    assert out == f'<a href="{escaped}">b</a>'


@pytest.mark.parametrize(
    ("src", "pixel", "expected"),
    [
        ("<html><body>x</body></html>", "bottom", "<html><body>xPX</body></html>"),
        ("<html><BODY class=a>x</BODY></html>", "top", "<html><BODY class=a>PXx</BODY></html>"),
        ("<p>fragment</p>", "bottom", "<p>fragment</p>PX"),
        ("<p>fragment</p>", "top", "<p>fragment</p>PX"),
        ("<body>a</body><body>b</body>", "bottom", "<body>a</body><body>bPX</body>"),
        ("<body>a</body><body>b</body>", "top", "<body>PXa</body><body>b</body>"),
        ("<body>a<!-- </body> --></body>", "bottom", "<body>a<!-- </body> -->PX</body>"),
    ],
)
def test_pixel_placement(src: str, pixel: str, expected: str) -> None:
    res = instrument_html(src, track=track, pixel_html="PX", pixel=pixel)  # type: ignore[arg-type]
    assert res.html == expected


def test_honeypot_is_invisible_and_next_to_the_pixel() -> None:
    res = instrument_html(
        "<body>x</body>", track=track, pixel_html="PX", honeypot_url="https://t.test/c/h?a&b"
    )
    hp = honeypot_html("https://t.test/c/h?a&b")
    assert res.html == "<body>xPX" + hp + "</body>"
    assert 'href="https://t.test/c/h?a&amp;b"' in hp
    for needed in ("display:none", "mso-hide:all", 'tabindex="-1"', 'aria-hidden="true"', "></a>"):
        assert needed in hp


def test_two_steps_equal_one_call() -> None:
    src = read("legacy-upper-quotes.html")
    plan = plan_links(src)
    signed = {p: track(u, p) for p, u in plan.links}
    two = apply_plan(plan, signed, pixel_html=PIXEL)
    one = instrument_html(src, track=track, pixel_html=PIXEL)
    assert two.html == one.html and two.links == one.links


def test_refused_url_keeps_its_link_and_takes_no_position() -> None:
    def picky(url: str, position: int) -> str:
        if "bad" in url:
            raise ValueError("too long")
        return f"https://t.test/c/{position}"

    src = '<a href="https://a.test/bad">1</a><a href="https://a.test/good">2</a>'
    res = instrument_html(src, track=picky, pixel_html="")
    assert res.links == [(1, "https://a.test/good")]
    assert res.html == '<a href="https://a.test/bad">1</a><a href="https://t.test/c/1">2</a>'
    assert [s.reason for s in res.skipped] == [Skip.REFUSED]


def test_same_url_one_position_and_track_called_once() -> None:
    calls: list[tuple[str, int]] = []

    def rec(url: str, position: int) -> str:
        calls.append((url, position))
        return f"https://t.test/c/{position}"

    src = '<a href="https://a.test/1">a</a><a href="https://a.test/2">b</a><a href="https://a.test/1">c</a>'
    res = instrument_html(src, track=rec, pixel_html="")
    assert calls == [("https://a.test/1", 1), ("https://a.test/2", 2)]
    assert res.html.count("https://t.test/c/1") == 2


# --- link rules, one row per reason --------------------------------------------------

RULES: list[tuple[str, str, Skip | None]] = [
    ('<a href="https://a.test/p">Read</a>', "safe", None),
    ('<a href="http://a.test/p">Read</a>', "safe", None),
    ('<a href="https://a.test/p">Read</a>', "off", Skip.CLICKS_OFF),
    ('<a href="https://a.test/p" data-mailbeacon="off">Read</a>', "all", Skip.OPT_OUT),
    ('<a href="https://a.test/p" DATA-MAILBEACON=OFF>Read</a>', "all", Skip.OPT_OUT),
    ('<a href="">Read</a>', "all", Skip.EMPTY),
    ('<a href="#top">Read</a>', "all", Skip.FRAGMENT),
    ('<a href="mailto:a@b.test">Read</a>', "all", Skip.MAILTO),
    ('<a href="MAILTO:a@b.test">Read</a>', "all", Skip.MAILTO),
    ('<a href="tel:+4930123">Call</a>', "all", Skip.TEL),
    ('<a href="sms:+4930123">Text</a>', "all", Skip.SMS),
    ('<a href="javascript:alert(1)">Read</a>', "all", Skip.JAVASCRIPT),
    ('<a href="java&#10;script:alert(1)">Read</a>', "all", Skip.JAVASCRIPT),
    ('<a href="data:text/html,hi">Read</a>', "all", Skip.DATA),
    ('<a href="ftp://a.test/f">Read</a>', "all", Skip.OTHER_SCHEME),
    ('<a href="page.html">Read</a>', "all", Skip.RELATIVE),
    ('<a href="/path">Read</a>', "all", Skip.RELATIVE),
    ('<a href="https://T.test/c/abc">Read</a>', "all", Skip.ALREADY_TRACKED),
    ('<a href="https://a.test/p">a.test</a>', "safe", Skip.VISIBLE_URL),
    ('<a href="https://a.test/p">see https://a.test/p</a>', "safe", Skip.VISIBLE_URL),
    ('<a href="https://a.test/p"><b>www.example.org</b></a>', "safe", Skip.VISIBLE_URL),
    ('<a href="https://a.test/p">Visit Example.COM now</a>', "safe", Skip.VISIBLE_URL),
    ('<a href="https://a.test/p">a.test</a>', "all", None),
    ('<a href="https://a.test/p">report.pdf</a>', "safe", None),
    ('<a href="https://a.test/unsubscribe?u=1">Leave</a>', "safe", Skip.UNSUBSCRIBE),
    ('<a href="https://a.test/u?id=1">Unsubscribe</a>', "safe", Skip.UNSUBSCRIBE),
    ('<a href="https://a.test/u?id=1">Opt-out here</a>', "safe", Skip.UNSUBSCRIBE),
    ('<a href="https://a.test/u?id=1">Newsletter abmelden</a>', "safe", Skip.UNSUBSCRIBE),
    ('<a href="https://a.test/u?id=1">Se désabonner</a>', "safe", Skip.UNSUBSCRIBE),
    ('<a href="https://a.test/unsubscribe?u=1">Leave</a>', "all", None),
    ('<area href="https://a.test/map" alt="a.test">', "safe", None),
    (
        '<v:roundrect href="https://a.test/btn"><center>a.test</center></v:roundrect>',
        "safe",
        Skip.VISIBLE_URL,
    ),
    ('<link href="https://a.test/style.css" rel=stylesheet>', "all", "untouched"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("src", "clicks", "reason"), RULES)
def test_link_rules(src: str, clicks: str, reason: Skip | str | None) -> None:
    res = instrument_html(
        src,
        track=track,
        pixel_html="",
        clicks=clicks,  # type: ignore[arg-type]
        tracked_prefixes=["https://t.test"],
    )
    if reason is None:
        assert len(res.links) == 1 and not res.skipped
        assert "https://t.test/c/1" in res.html
    elif reason == "untouched":
        assert res.html == src and not res.links and not res.skipped
    else:
        assert res.links == [] and res.html == src
        assert [s.reason for s in res.skipped] == [reason]


# --- property: nothing outside the edits changes ----------------------------------

_word = st.sampled_from(
    ["Hello", "world", "a.b", "x<y", "&amp;", "&copy", "é", " ", "\n", "<", ">", "=", '"']
)
_url = st.sampled_from(
    [
        "https://a.test/p?x=1&amp;y=2",
        "https://a.test/q?x=1&y=2",
        "http://b.test/",
        " https://c.test/s ",
        "mailto:a@b.test",
        "#frag",
        "rel/ative",
        "https://a.test/unsubscribe",
        "https://t.test/c/already",
        "",
    ]
)


@st.composite
def _link(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(["a", "A", "area", "AREA", "v:roundrect", "V:RECT", "link", "abbr"]))
    url = draw(_url)
    quote = draw(st.sampled_from(['"', "'", ""]))
    if quote == "" and (not url or any(c in url for c in " \"'=<>`")):
        quote = '"'
    space = draw(st.sampled_from([" ", "  ", "\n", "\t", " / "]))
    eq = draw(st.sampled_from(["=", " = ", "=\n"]))
    extra = draw(
        st.sampled_from(["", " class=x", " data-mailbeacon=off", " title='a>b'", ' x="<a href=y>"'])
    )
    text = draw(st.sampled_from(["Read more", "a.test", "Leave", "", "<b>Go</b>"]))
    return f"<{tag}{extra}{space}href{eq}{quote}{url}{quote}{extra}>{text}</{tag}>"


_chunk = st.one_of(
    _word,
    _link(),
    st.builds(lambda x: f"<!--{x}-->", _link()),
    st.builds(lambda x: f"<!--[if mso]>{x}<![endif]-->", _link()),
    st.builds(lambda x: f"<script>{x}</script>", _link()),
    st.builds(lambda x: f"<style>/*{x}*/</style>", _link()),
    st.sampled_from(
        [
            "<body>",
            "<BODY class=a>",
            "</body>",
            "</BODY >",
            "<p>",
            "</p>",
            "<br/>",
            "<!-->",
            "<![CDATA[x]]>",
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_chunk, max_size=25).map("".join),
    st.sampled_from(["off", "safe", "all"]),
    st.sampled_from(["bottom", "top"]),
    st.booleans(),
)
def test_property_only_edits_change(doc: str, clicks: str, pixel: str, honeypot: bool) -> None:
    hp = "https://t.test/c/hp" if honeypot else None
    res = instrument_html(
        doc,
        track=track,
        pixel_html="<img src=PIXEL>",
        clicks=clicks,  # type: ignore[arg-type]
        pixel=pixel,  # type: ignore[arg-type]
        honeypot_url=hp,
        tracked_prefixes=["https://t.test"],
    )
    inserted = "<img src=PIXEL>" + (honeypot_html(hp) if hp else "")
    check_only_edits(doc, res, inserted)
    assert [p for p, _ in res.links] == list(range(1, len(res.links) + 1))
    assert all(url.startswith(("https://", "http://")) for _, url in res.links)
    if clicks == "off":
        assert res.links == []


# --- unrendered merge tags: never signed ---------------------------------------------

PLACEHOLDERS = [
    # (href, the placeholder reported)
    ("https://twitter.com/intent/tweet?url=[[SHORT_PERMALINK]]", "[[SHORT_PERMALINK]]"),
    ("https://a.test/p?id={{id}}", "{{id}}"),
    ("https://a.test/p?id={{ id }}", "{{ id }}"),
    ("https://a.test/p?id={{{raw}}}", "{{{raw}}}"),
    ("https://a.test/{% if vip %}vip{% endif %}", "{% if vip %}"),
    ("https://a.test/p?e=*|EMAIL|*", "*|EMAIL|*"),
    ("https://a.test/p?e=*|FNAME|Friend|*", "*|FNAME|Friend|*"),
    ("https://a.test/p?e=%%emailaddr%%", "%%emailaddr%%"),
    ("https://a.test/p?e=%%=v(@email)=%%", "%%=v(@email)=%%"),
    ("https://a.test/p?e={$email}", "{$email}"),
    ("https://a.test/p?n=<%= recipient.lastName %>", "<%= recipient.lastName %>"),
    ("https://a.test/p?n=<%=escapeUrl(recipient.lastName)%>", "<%=escapeUrl(recipient.lastName)%>"),
    ("https://a.test/p?n=${firstName}", "${firstName}"),
    ("https://a.test/p?n={firstName}", "{firstName}"),
    ("https://a.test/p?n=%FIRSTNAME%", "%FIRSTNAME%"),
    ("https://a.test/p?n=%DATE%", "%DATE%"),
    ("https://a.test/u/%recipient.unique_id%", "%recipient.unique_id%"),
    ("https://a.test/p?e=[email]", "[email]"),
    ("https://a.test/p?d=[Dateofbirth,fallback=]", "[Dateofbirth,fallback=]"),
    ("https://a.test/p?c={!Contact.Id}", "{!Contact.Id}"),
    ("https://a.test/p?c=#{user.id}", "#{user.id}"),
    ("https://a.test/p?c=$[LI:FIRSTNAME]$", "[LI:FIRSTNAME]"),
    ("https://a.test/customerOffer?id=-customerID-", "-customerID-"),
    ("https://a.test/r?camCode=#pf:BUILTIN_CampaignCode#", "#pf:BUILTIN_CampaignCode#"),
    ("https://a.test/p?n=~~NAME~~", "~~NAME~~"),
    ("https://a.test/p?id=%7B%7Bid%7D%7D", "%7B%7Bid%7D%7D"),
    ("https://a.test/p?e=*%7CEMAIL%7C*", "*%7CEMAIL%7C*"),
    ("{{unsubscribe_url}}", "{{unsubscribe_url}}"),  # a whole-URL tag, relative
    ("*|ARCHIVE|*", "*|ARCHIVE|*"),
    ("[UNSUBSCRIBE_URL]", "[UNSUBSCRIBE_URL]"),
    ("%%view_email_url%%", "%%view_email_url%%"),
]

NOT_PLACEHOLDERS = [
    "https://a.test/caf%C3%A9?q=%E2%80%99s",  # UTF-8 percent-escapes
    "https://a.test/caf%E9t%E9",  # latin-1 percent-escapes
    "https://a.test/100%25-sure",
    "https://a.test/best-of-the-year-sale",  # a slug, not SendGrid's -tag-
    "https://a.test/search?filter[status]=open&ids[]=1",  # PHP-style arrays
    "http://[2001:db8::1]/path",  # an IPv6 host
    "https://a.test/page#section",
]


@pytest.mark.parametrize(("href", "found"), PLACEHOLDERS)
def test_placeholder_links_are_never_signed(href: str, found: str) -> None:
    src = f'<a href="{href.replace("&", "&amp;")}">Go</a>'
    for clicks in ("safe", "all"):
        res = instrument_html(src, track=track, pixel_html="", clicks=clicks)  # type: ignore[arg-type]
        assert res.html == src and res.links == []
        assert [(s.reason, s.detail) for s in res.skipped] == [(Skip.PLACEHOLDER, found)]


@pytest.mark.parametrize("href", NOT_PLACEHOLDERS)
def test_urls_that_only_look_like_placeholders_are_tracked(href: str) -> None:
    res = instrument_html(f'<a href="{href}">Go</a>', track=track, pixel_html="", clicks="all")
    assert res.links == [(1, href)]


# --- where the pixel goes: never glued into anything left open ------------------------

PLACES: list[tuple[str, str, str, str]] = [
    # (html, pixel mode, expected output with PX, what the result says)
    ("<body><p>x</p></body>", "bottom", "<body><p>x</p>PX</body>", "before </body>"),
    ("<body><p>x</p></body>", "top", "<body>PX<p>x</p></body>", "after <body>"),
    # Text after </body> joins the body's last line: the pixel goes after it.
    (
        "<body><p>x</p>Tail</body>\nmore</html>\n",
        "bottom",
        "<body><p>x</p>Tail</body>\nmorePX</html>\n",
        "after the content that follows </body>",
    ),
    (
        "<body><p>x</p></body>\n<!-- c -->\n</html>\n",
        "bottom",
        "<body><p>x</p>PX</body>\n<!-- c -->\n</html>\n",
        "before </body>",
    ),
    # An attribute value left open swallows the rest of the document.
    (
        '<p>Hi</p><img src="x.gif',
        "bottom",
        '<p>Hi</p>PX<img src="x.gif',
        "before a <img tag left open at the end",
    ),
    (
        '<p>Hi</p><a href="x>Click</a></body></html>',
        "bottom",
        '<p>Hi</p>PX<a href="x>Click</a></body></html>',
        "before a <a tag left open at the end",
    ),
    (
        "<p>Hi</p><!-- to the end",
        "bottom",
        "<p>Hi</p>PX<!-- to the end",
        "before a comment left open at the end",
    ),
    (
        "<p>Hi</p><style>p{color:red}",
        "bottom",
        "<p>Hi</p>PX<style>p{color:red}",
        "before a <style> element left open at the end",
    ),
    (
        "<p>Hi</p><title>t",
        "bottom",
        "<p>Hi</p>PX<title>t",
        "before a <title> element left open at the end",
    ),
    (
        "<p>Hi</p><!--[if mso]><table><tr><td>",
        "bottom",
        "<p>Hi</p>PX<!--[if mso]><table><tr><td>",
        "before an <!--[if ...]> comment left open at the end",
    ),
    (
        "<p>Hi</p><!--[if mso]>x<![endif]-->",
        "bottom",
        "<p>Hi</p><!--[if mso]>x<![endif]-->PX",
        "at the end (no </body>)",
    ),
    (
        "<body><p>x</p><!--[if mso]></td></tr></table></body><![endif]--></html>",
        "bottom",
        "<body><p>x</p>PX<!--[if mso]></td></tr></table></body><![endif]--></html>",
        "before the <!--[if ...]> comment around </body>",
    ),
    ("<p>fragment</p>", "top", "<p>fragment</p>PX", "at the end (no </body>) (no <body> tag)"),
]


@pytest.mark.parametrize(("src", "mode", "expected", "where"), PLACES)
def test_pixel_goes_where_a_browser_renders_it(
    src: str, mode: str, expected: str, where: str
) -> None:
    res = instrument_html(src, track=track, pixel_html="PX", pixel=mode)  # type: ignore[arg-type]
    assert res.html == expected
    assert res.pixel is not None and res.pixel.where == where
