"""Settings → Mailboxes in a real browser (Debian's Chromium) against a real
`serve`: watch a mailbox at the private Dovecot and one at a port nothing
listens on, see each one's state, last check and error, remove one after the
confirmation page; the password never comes back in a page; forms need the
session's CSRF token; the page fits a 390 px phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import dashboard_helpers
from tests.dashboard_helpers import needs_chromium
from tests.helpers import Server, cli, start_server, wait_for
from tests.mailservers import Dovecot

EMAIL, PASSWORD = "sender@example.com", "a long passphrase"
GONE = "gone@example.com"
# Port 1 on loopback: nothing listens, the connection is refused at once.
GONE_URL = "imaps://gone%40example.com:never-shown-pw@127.0.0.1:1"
PATH = "/settings/mailboxes"

pytestmark = needs_chromium


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(sqlite_url, tmp_path)
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=sqlite_url)
    try:
        yield srv
    finally:
        srv.stop()


def signed_in(browser: Any, site: Server, width: int) -> Any:
    return dashboard_helpers.signed_in(browser, site.url + PATH, width, EMAIL, PASSWORD)


def row(pg: Any, email: str) -> Any:
    return pg.locator(f'#mailboxes tr[data-mailbox="{email}"]')


def state_after_reload(pg: Any, email: str, state: str) -> bool:
    pg.goto(pg.url.split("?")[0])
    return bool(row(pg, email).locator("[data-state]").inner_text() == state)


def add(pg: Any, email: str, url: str) -> None:
    pg.get_by_label("Mailbox address").fill(email)
    pg.get_by_label("IMAP URL").fill(url)
    pg.get_by_role("button", name="Watch mailbox").click()


def test_watch_see_state_and_remove(site: Server, browser: Any, dovecot: Dovecot) -> None:
    pg = signed_in(browser, site, 1280)
    pg.goto(site.url + "/settings")
    pg.get_by_role("main").get_by_role("link", name="Mailboxes").click()
    pg.wait_for_url(site.url + PATH)
    assert "No mailboxes watched" in pg.locator("#mailboxes").inner_text()

    # Unreachable: listed at once, then failing with the watcher's words.
    add(pg, GONE, GONE_URL)
    assert f"Watching {GONE}" in pg.get_by_role("status").inner_text()
    assert "never-shown-pw" not in pg.content()
    assert pg.get_by_label("IMAP URL").input_value() == ""
    wait_for(lambda: state_after_reload(pg, GONE, "failing"), "the mailbox to fail")
    gone = row(pg, GONE).inner_text()
    assert "imaps://gone%40example.com@127.0.0.1:1" in gone
    assert row(pg, GONE).locator(".mb-error").inner_text().strip(), "no error shown"
    assert row(pg, GONE).locator("time").count() >= 1, "no last check shown"

    # The private Dovecot: ok, with a last check.
    sender, password = dovecot.add_user(dovecot.address("page"))
    add(pg, sender, dovecot.imap_url(sender))
    assert password not in pg.content()
    wait_for(lambda: state_after_reload(pg, sender, "ok"), "the mailbox to be watched")
    assert row(pg, sender).locator("time").count() == 1
    assert row(pg, sender).locator(".mb-error").inner_text().strip() == ""
    listed = {b["email"]: b for b in site.api("GET", "/api/v1/mailboxes").json()}
    assert listed[sender]["state"] == "ok" and listed[GONE]["state"] == "failing"

    # A refused URL: the reason, the address kept, the URL (and password) not.
    add(pg, "x@example.com", "imap://x:leaky-secret@host:notaport")
    assert "is not a URL" in pg.get_by_role("alert").inner_text()
    assert "leaky-secret" not in pg.content()
    assert pg.get_by_label("Mailbox address").input_value() == "x@example.com"
    assert pg.get_by_label("IMAP URL").input_value() == ""

    # A form without the session's token is refused; nothing is removed.
    forged = pg.request.post(
        site.url + PATH + "/remove", form={"email": GONE, "csrf": "forged"}, max_redirects=0
    )
    assert forged.status == 403
    assert GONE in {b["email"] for b in site.api("GET", "/api/v1/mailboxes").json()}

    # Remove asks first; Cancel keeps it, confirming removes it.
    pg.goto(site.url + PATH)
    row(pg, GONE).get_by_role("link", name="Remove").click()
    assert pg.get_by_role("heading", name=f"Stop watching {GONE}?").is_visible()
    pg.get_by_role("link", name="Cancel").click()
    assert row(pg, GONE).count() == 1
    row(pg, GONE).get_by_role("link", name="Remove").click()
    pg.get_by_role("button", name="Remove mailbox").click()
    pg.wait_for_url(re.compile(re.escape(site.url + PATH) + r"\?removed="))
    assert f"Stopped watching {GONE}" in pg.get_by_role("status").inner_text()
    assert row(pg, GONE).count() == 0 and row(pg, sender).count() == 1
    assert GONE not in {b["email"] for b in site.api("GET", "/api/v1/mailboxes").json()}
    pg.context.close()

    # At 390 px, with a failing row's long error: no sideways scroll.
    site.api("POST", "/api/v1/mailboxes", json={"email": GONE, "imap": GONE_URL})
    phone = signed_in(browser, site, 390)
    wait_for(lambda: state_after_reload(phone, GONE, "failing"), "the mailbox to fail")
    scroll, inner = phone.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll <= inner, f"scrollWidth {scroll} > {inner} at 390 px"
    phone.context.close()
