"""Render HTML in Debian's Chromium and compare screenshots pixel by pixel.

Used by tests/test_instrument_browser.py and bench/pixel_render.py. Chromium
is /usr/bin/chromium driven by Playwright (never a downloaded browser). The
network is closed: every request is aborted except the tracking pixel's,
which gets a real 43-byte transparent GIF, so remote images and web fonts
fail the same way before and after and cannot make renders flaky.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PIXEL_URL = "https://t.example.com/o/OPEN.gif"
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
WIDTHS = (600, 1200)
VIEWPORT_HEIGHT = 40
_MARQUEE = re.compile(r"<(/?)marquee\b", re.I)


def available() -> bool:
    return os.path.exists(CHROMIUM)


@dataclass
class Browser:
    page: Any
    pixel_loads: int = 0
    shots: int = 0

    def shot(self, html: str, width: int) -> bytes:
        """A full-page PNG of ``html`` at ``width`` CSS pixels."""
        # A URL of its own per shot, or the memory cache would answer the
        # second request and the count of pixel loads would lie.
        self.shots += 1
        html = html.replace(PIXEL_URL, f"{PIXEL_URL}?shot={self.shots}")
        # <marquee> moves with the clock: rendered as a <div>, before and after alike.
        html = _MARQUEE.sub(r"<\1div", html)
        # A low viewport: the full-page shot is as tall as the document, so a
        # page that grows by a line shows it even when it is short.
        self.page.set_viewport_size({"width": width, "height": VIEWPORT_HEIGHT})
        self.page.set_content(html, wait_until="load")
        return bytes(self.page.screenshot(full_page=True, animations="disabled"))


@contextmanager
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = chromium.new_context()
            page = context.new_page()
            page.set_default_timeout(30_000)
            b = Browser(page)

            def route(r: Any) -> None:
                if r.request.url.startswith(PIXEL_URL + "?shot="):
                    b.pixel_loads += 1
                    r.fulfill(status=200, body=GIF, content_type="image/gif")
                else:
                    r.abort()

            context.route("**/*", route)
            yield b
        finally:
            chromium.close()


def compare(before: bytes, after: bytes) -> tuple[str, int]:
    """("same", 0), ("one row", 1) when ``after`` is ``before`` with one row
    inserted (1 px taller, nothing else moved), else ("differs", height change)."""
    if before == after:
        return "same", 0
    from PIL import Image, ImageChops

    a = Image.open(io.BytesIO(before)).convert("RGB")
    b = Image.open(io.BytesIO(after)).convert("RGB")
    if a.size == b.size:
        return ("same", 0) if ImageChops.difference(a, b).getbbox() is None else ("differs", 0)
    grew = b.size[1] - a.size[1]
    if a.size[0] == b.size[0] and grew == 1:
        ra, rb, row = a.tobytes(), b.tobytes(), a.size[0] * 3
        y = 0
        while y < a.size[1] and ra[y * row : (y + 1) * row] == rb[y * row : (y + 1) * row]:
            y += 1
        if ra[y * row :] == rb[(y + 1) * row :]:
            return "one row", 1
    return "differs", grew


def before_after(b: Browser, before: str, after: str, width: int) -> tuple[str, int, bool]:
    """Render both and compare: (verdict, height change, whether the pixel loaded).

    A few pages render a pixel or two differently from one run to the next
    (a gradient at the edge of a page wider than the viewport: 1 of 12
    renders of the same HTML differed in one channel by 1). So a difference
    is rendered again, up to three times, before it counts.
    """
    verdict, grew, loaded = "differs", 0, False
    for _ in range(3):
        shot_before = b.shot(before, width)
        loads = b.pixel_loads
        shot_after = b.shot(after, width)
        loaded = b.pixel_loads > loads
        verdict, grew = compare(shot_before, shot_after)
        if verdict == "same":
            break
    return verdict, grew, loaded
