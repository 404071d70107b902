"""The overview as a list you can search and page, in a real browser
(Chromium through Playwright, as tests/test_dashboard_browser.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import Server
from tests.test_dashboard_browser import (  # noqa: F401 - fixtures
    SHOTS,
    THUNDERBIRD,
    browser,
    page,
    pytestmark,
    sign_in,
    site,
)


def follow(pg: Any, target: Any) -> None:
    """Click a link or form button and wait for the page it loads (reading
    rows right after the click could still see the old page)."""
    with pg.expect_navigation():
        target.click()


def rows(pg: Any) -> list[str]:
    return list(pg.locator("table.messages tbody tr").all_inner_texts())


def test_overview_finds_and_pages_messages(page: Any, site: Server) -> None:  # noqa: F811
    quote = site.message(
        recipient="quote@client.example", subject="Your quote", sent_at=time.time() - 3600
    )
    for i in range(52):
        site.message(recipient=f"p{i}@example.org", subject=f"Outreach {i}")
    r = httpx.get(
        quote["open_url"], headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.20"}
    )
    assert r.headers["x-mailbeacon-recorded"] == "yes"

    sign_in(page, site)
    first = rows(page)
    assert len(first) == 50
    # Opened a moment ago, though tracked before the 52 others: on top, in words.
    assert "quote@client.example" in first[0] and "Opened 1× · Thunderbird" in first[0]
    assert any("Not opened" in row for row in first[1:])
    page.screenshot(path=str(SHOTS / "overview-messages.png"), full_page=True)

    follow(page, page.get_by_role("link", name="Next page"))
    second = rows(page)
    assert len(second) == 3 and not set(second) & set(first)
    follow(page, page.get_by_role("link", name="First page"))

    page.get_by_label("Find").fill("p7@")
    follow(page, page.get_by_role("button", name="Find"))
    assert [row.split()[0] for row in rows(page)] == ["p7@example.org"]
    page.get_by_label("Find").fill("")
    page.get_by_label("Status").select_option("opened")
    follow(page, page.get_by_role("button", name="Find"))
    assert len(rows(page)) == 1 and "quote@client.example" in rows(page)[0]
    page.get_by_label("Find").fill("nobody-here")
    follow(page, page.get_by_role("button", name="Find"))
    assert page.get_by_text("No messages match.").is_visible()


def test_archive_and_delete_a_campaign(page: Any, site: Server) -> None:  # noqa: F811
    cid = site.api("POST", "/api/v1/campaigns", json={"name": "Failed demo run"}).json()["id"]
    site.message(recipient="junk@example.org", campaign_id=cid)
    sign_in(page, site)
    campaigns = page.locator("section:has(h2:text('Campaigns'))")
    campaigns.get_by_role("link", name="Failed demo run").click()
    page.get_by_role("button", name="Archive").click()
    page.wait_for_url(f"{site.url}/campaigns/{cid}")
    assert page.get_by_role("button", name="Unarchive").is_visible()
    page.goto(site.url + "/")
    assert campaigns.get_by_role("link", name="Failed demo run").count() == 0
    page.get_by_role("link", name="Show archived campaigns").click()
    campaigns.get_by_role("link", name="Failed demo run").click()

    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("heading", name="Delete Failed demo run?").wait_for()
    assert page.get_by_text("its 1 message,").is_visible()
    page.screenshot(path=str(SHOTS / "campaign-delete-confirm.png"), full_page=True)
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{site.url}/campaigns/{cid}")
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete campaign and its messages").click()
    page.wait_for_url(site.url + "/")
    assert "junk@example.org" not in page.content()
    assert site.api("GET", "/api/v1/campaigns", params={"archived": "1"}).json() == []
