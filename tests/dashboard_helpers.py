"""The dashboard's browser tests: Debian's Chromium through Playwright, and
signing in on the way to a page (which also shows a signed-out visitor is
sent to the login page first)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            browser.close()


def signed_in(browser: Any, url: str, width: int, email: str, password: str) -> Any:
    """A page at ``url`` ``width`` px wide, reached through the login form."""
    ctx = browser.new_context(viewport={"width": width, "height": 800})
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    pg.goto(url)
    assert "/login" in pg.url  # signed out: sent to sign in first
    pg.get_by_label("Email").fill(email)
    pg.get_by_label("Password").fill(password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(url)
    return pg
