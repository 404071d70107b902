"""The pixel is invisible: real templates rendered in Chromium before and after
instrumenting must be pixel-identical, at 600 and 1,200 px, and the pixel
must load. bench/pixel_render.py runs the same over the whole corpus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailbeacon.instrument import instrument_eml, instrument_html
from mailbeacon.instrument.pixel import pixel_img
from tests import realworld, render

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not render.available(), reason=f"needs {render.CHROMIUM}"),
]
PIXEL = pixel_img(render.PIXEL_URL)

# Before this placement and markup, each of these grew or shifted: a blank
# band of 16-26 px under MJML, Cerberus and SendGrid layouts, 1 px under
# others, 8 px where a <p>'s margin stopped collapsing with the body's.
TEMPLATES = [
    "mjmlio__austin.mjml-compiled.html",
    "rodriguezc__salted-responsive-email-template.html",
    "sendgrid__dynamic-templates_special-sale_special_sale.html",
    "sendwithus__templates_airmail_confirm.html",
]
MESSAGES = [
    ("apache__t_data_spam_utf16.eml", 2),
    ("stalwartla__resources_eml_thirdparty_018.eml", 1),
]
_BG = "<html style='background:#fc9'><body style='background:#9cf'>"
SYNTHETIC = [
    _BG + "<p>One paragraph, margins collapsing with the body's.</p></body></html>",
    _BG.replace("body ", "body align=center ") + "Inline text, then <b>more</b></body></html>",
    _BG + "<p>x</p>Tail text</body> after the body</html>",
    _BG + '<p>Hi</p><a href="https://a.test/>never closed</a></body></html>',
    "<div style='padding:20px;background:#eef'><p>A fragment, no body tag</p></div>",
]


def track(url: str, position: int) -> str:
    return f"https://t.example.com/c/{position}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[render.Browser]:
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("PIL")
    with render.browser() as b:
        yield b


def cases(mode: str) -> Iterator[tuple[str, str, str]]:
    """(name, before, after) for every sample, with the pixel at ``mode``."""
    for i, html in enumerate(SYNTHETIC):
        res = instrument_html(html, track=track, pixel_html=PIXEL, pixel=mode)  # type: ignore[arg-type]
        yield f"synthetic {i} ({mode})", html, res.html
    if realworld.corpus_dir() is None:
        return
    base = realworld.corpus_dir()
    assert base is not None
    for name in TEMPLATES:
        src = (base / "html" / name).read_bytes().decode("utf-8", "surrogateescape")
        res = instrument_html(src, track=track, pixel_html=PIXEL, pixel=mode, clicks="all")  # type: ignore[arg-type]
        yield f"{name} ({mode})", src, res.html
    for name, ordinal in MESSAGES:
        data = (base / "eml" / name).read_bytes()
        out = instrument_eml(data, track=track, pixel_html=PIXEL, pixel=mode).eml  # type: ignore[arg-type]
        before = dict(realworld.html_part_texts(data))[ordinal].text
        after = dict(realworld.html_part_texts(out))[ordinal].text
        yield f"{name}#{ordinal} ({mode})", before, after


# One test per placement, so two workers render them side by side.
@pytest.mark.parametrize("mode", ["bottom", "top"])
def test_pixel_is_invisible_and_loads(chromium: render.Browser, mode: str) -> None:
    if realworld.corpus_dir() is None:
        print(realworld.missing_reason(), "- only the synthetic pages are rendered")
    failures = []
    for name, before, after in cases(mode):
        assert after.count(render.PIXEL_URL) == 1, name
        for width in render.WIDTHS:
            verdict, grew, loaded = render.before_after(chromium, before, after, width)
            if verdict != "same" or not loaded:
                failures.append(f"{name} at {width} px: {verdict} ({grew:+d} px), loaded={loaded}")
    assert failures == []


def test_the_old_inline_pixel_shows(chromium: render.Browser) -> None:
    """The check can fail: an inline <img> after the content adds a line."""
    html = _BG + "<table><tr><td>Cell</td></tr></table></body></html>"
    old = '<img src="' + render.PIXEL_URL + '" width="1" height="1" alt="">'
    after = html.replace("</body>", old + "</body>")
    verdict, grew, loaded = render.before_after(chromium, html, after, 600)
    assert loaded and verdict != "same"
