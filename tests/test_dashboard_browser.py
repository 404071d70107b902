"""The dashboard in a real browser (Debian's Chromium through Playwright)
against a real `serve`: sign in, track an email and copy its pixel, watch a
hit arrive in the live feed, walk a campaign filled by `mailbeacon demo`.

Screenshots go to artifacts/screenshots/. Needs /usr/bin/chromium; the
Playwright-managed browsers are never downloaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Server, cli, start_server

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
EMAIL, PASSWORD = "sender@example.com", "a long passphrase"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GMAIL_PROXY_UA = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(sqlite_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=sqlite_url)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(site: Server, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()


def nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def sign_in(page: Any, site: Server) -> None:
    page.goto(site.url + "/")
    assert "/login" in page.url
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url + "/")
    assert page.get_by_role("heading", name="Overview").is_visible()


def test_track_copy_and_live_feed(page: Any, site: Server) -> None:
    sign_in(page, site)
    nav(page, "Track an email")
    page.get_by_label("Recipient").fill("ana@example.com")
    page.get_by_label("Subject").fill("Lunch on Friday?")
    page.get_by_label("Links to track").fill("https://example.com/menu")
    page.get_by_role("button", name="Create pixel").click()
    page.get_by_role("heading", name="Ready: Lunch on Friday? to ana@example.com").wait_for()
    pixel = page.locator("#pixel-code").input_value()
    assert pixel.startswith(f'<img src="{site.url}/o/')

    page.get_by_role("button", name="Copy pixel").click()
    page.get_by_text("Copied. Paste it into your email.").wait_for()
    copied = page.evaluate(
        """async () => {
            const items = await navigator.clipboard.read();
            const blob = await items[0].getType("text/html");
            return { types: items[0].types, html: await blob.text() };
        }"""
    )
    # Rich content, as compose windows paste it (the browser re-serialises the tag).
    src = pixel.split('src="')[1].split('"')[0]
    assert "text/html" in copied["types"] and f'<img src="{src}"' in copied["html"]

    # The compose window's first fetch shows up as the activation, live: Gmail's
    # compose loads the pasted pixel through its image proxy (issue 12 item 4:
    # the first fetch through the client the sender writes in).
    # No wait for the stream to connect: the page streams from the newest
    # event when it was made, so a fetch before the connection still shows.
    httpx.get(src, headers={"User-Agent": GMAIL_PROXY_UA, "X-Forwarded-For": "66.249.84.9"})
    page.get_by_text("Activation fetch seen").wait_for()
    page.screenshot(path=str(SHOTS / "track-an-email.png"), full_page=True)

    # Another client's open appears on the overview's live feed, no reload.
    nav(page, "Overview")
    page.wait_for_selector("#feed-status:has-text('connected')")
    page.evaluate("window.__stillHere = true")
    msg = site.message(recipient="bo@example.com", subject="Quote", sent_at=time.time() - 3600)
    httpx.get(
        msg["open_url"], headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.20"}
    )
    item = page.locator("#feed li", has_text="bo@example.com")
    item.wait_for()
    assert "Read by a person" in item.inner_text() and "first open" in item.inner_text()
    assert page.evaluate("window.__stillHere") is True
    page.screenshot(path=str(SHOTS / "live-feed.png"), full_page=True)


def test_campaign_page_after_demo_traffic(page: Any, site: Server) -> None:
    out = cli("demo", "--url", site.url, db=site.db, timeout=120).stdout
    cid = int(out.split("Created campaign ")[1].split()[0])
    sign_in(page, site)
    page.get_by_role("link", name="Demo: spring newsletter").first.click()
    page.wait_for_url(f"{site.url}/campaigns/{cid}")
    assert page.get_by_text("opened by a person").is_visible()
    assert page.get_by_text("Not counted as reads").is_visible()
    assert page.locator("svg[aria-label='Timeline of opens and clicks']").count() == 1
    assert page.locator("svg.heatmap rect").count() == 7 * 24
    links = page.locator("section:has(h2:text('Links')) tbody tr")
    assert links.count() == 3  # the hidden honeypot link is not a row
    figures = page.locator(".figures").inner_text()
    assert "1 messages" not in figures and "1 fetches" not in figures and "(1 fetch)" in figures
    clients = page.locator("section:has(h2:text('Mail clients'))").inner_text()
    assert "Apple Mail (iPhone)" in clients and "WKWebView" not in clients
    page.screenshot(path=str(SHOTS / "campaign.png"), full_page=True)

    page.get_by_role("link", name="not opened").click()
    rows = page.locator("#recipients tbody tr")
    names = rows.all_inner_texts()
    assert any("ben@example.org" in r for r in names)
    assert not any("olivia@example.org" in r for r in names)

    page.get_by_role("link", name="all (12)").click()
    page.get_by_role("link", name="amir@example.net").click()
    assert page.get_by_text(
        "Apple Mail Privacy Protection fetched this at delivery: not a read."
    ).is_visible()
    mpp = page.locator("ol.timeline li.machine").first.inner_text()
    assert "Fetched at delivery, not opened" in mpp and "Opened" not in mpp
    page.screenshot(path=str(SHOTS / "message-mpp.png"), full_page=True)
    page.go_back()
    page.get_by_role("link", name="security@corp.example").click()
    assert page.get_by_text("Followed the invisible link no person can see").is_visible()
    tracked = page.locator("section:has(h2:text('Tracking')) tbody tr").all_inner_texts()
    assert tracked and not any(row.split()[0] == "0" for row in tracked)  # no honeypot row
    page.screenshot(path=str(SHOTS / "message-scanner.png"), full_page=True)

    # Keyboard: the skip link is the first stop and lands on the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    nav(page, "Settings")
    page.get_by_label("New key name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#new-key").input_value().startswith("mb_")
    page.screenshot(path=str(SHOTS / "settings.png"), full_page=True)


# --- every page at phone and desktop width, light and dark (issue 13) -------

WIDTHS = (390, 1280)
SCHEMES = ("light", "dark")
LONG_URL = (
    "https://example.com/proposals/2026/acme-corporation-website-redesign-and-hosting"
    "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-2026-relaunch"
)


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $MAILBEACON_SCREENSHOTS, else a pytest tmp dir."""
    where = os.environ.get("MAILBEACON_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {path}")
    return path


# Measured in the page: horizontal overflow, chart text as rendered (the SVG
# scales with its box), URL cells squeezed to a few characters per line.
MEASURE = """() => {
  const out = {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
               wide: [], tiny: [], squeezed: []};
  for (const e of document.querySelectorAll("main *, header *")) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > window.innerWidth + 1 && !e.closest(".scroll"))
      out.wide.push(e.tagName + "." + e.className + " " + Math.round(r.right));
  }
  for (const t of document.querySelectorAll("svg.chart text")) {
    const h = t.getBoundingClientRect().height;
    if (h && h < 11) out.tiny.push(t.textContent + " " + h.toFixed(1));
  }
  for (const u of document.querySelectorAll(".url")) {
    const r = u.getBoundingClientRect();
    if (r.width && r.width < 100) out.squeezed.push(u.textContent.slice(0, 40) + " " + r.width);
  }
  out.wide = out.wide.slice(0, 5);
  out.bg = getComputedStyle(document.body).backgroundColor;
  const icon = document.querySelector("link[rel=icon]");
  out.icon = icon ? icon.href : null;
  return out;
}"""


def test_every_page_fits_phone_and_desktop(site: Server, browser: Any, shots: Path) -> None:
    out = cli("demo", "--url", site.url, db=site.db, timeout=120).stdout
    cid = int(out.split("Created campaign ")[1].split()[0])
    one = site.message(
        recipient="a.very.long.recipient.address@subdomain.example-corporation.com",
        subject="Proposal for the website redesign and two years of hosting, revised",
        sent_at=time.time() - 7200,
        links=[LONG_URL, "https://example.com/x"],
    )
    httpx.get(
        one["open_url"], headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.7"}
    )
    hook = site.api(
        "POST", "/api/v1/webhooks", json={"url": LONG_URL, "events": ["message.first_open"]}
    )
    assert hook.status_code == 201, hook.text
    empty = site.api("POST", "/api/v1/campaigns", json={"name": "Nothing sent yet"}).json()
    site.message(recipient="quiet@example.com", campaign_id=empty["id"])
    # A long address and URL in the mailbox list (port 1: refused, so failing).
    box = site.api("POST", "/api/v1/mailboxes", json={
        "email": "a.very.long.sender.mailbox@subdomain.example-corporation.com",
        "imap": "imaps://a.very.long.sender.mailbox%40subdomain.example-corporation.com"
        ":pw@127.0.0.1:1",
    })  # fmt: skip
    assert box.status_code == 201, box.text
    # A sender with a long address and upstream (this server has no --smtp-port:
    # its page shows how to turn SMTP on).
    sender = "a.very.long.sender.address@subdomain.example-corporation.com"
    cli("senders", "create", "--email", sender, "--upstream",
        "smtps://a.very.long.sender.address%40subdomain.example-corporation.com:pw"
        "@smtp.subdomain.example-corporation.com:465", db=site.db)  # fmt: skip
    pages = {
        "overview": "/",
        "campaign": f"/campaigns/{cid}",
        "empty-campaign": f"/campaigns/{empty['id']}",
        "message": f"/messages/{one['id']}",
        "live": "/live",
        "track": "/track",
        "settings": "/settings",
        "webhook": f"/settings/webhooks/{hook.json()['id']}",
        "mailboxes": "/settings/mailboxes",
        "mailbox-remove": "/settings/mailboxes/remove?email=" + box.json()["email"],
        "senders": "/settings/senders",
        "sender": f"/settings/senders/{sender}",
        "sender-remove": f"/settings/senders/{sender}/remove",
        "not-found": "/messages/999999",
    }
    icon = httpx.get(site.url + "/static/favicon.svg")  # served locally, no CDN
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    problems: list[str] = []
    for scheme in SCHEMES:
        for width in WIDTHS:
            ctx = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
            pg = ctx.new_page()
            pg.set_default_timeout(15_000)
            visits = [("login", "/login")]
            for name, path in visits:
                pg.goto(site.url + path)
                problems += check(pg, shots, f"{name}-{width}-{scheme}")
            pg.get_by_label("Email").fill(EMAIL)
            pg.get_by_label("Password").fill(PASSWORD)
            pg.get_by_role("button", name="Sign in").click()
            pg.wait_for_url(site.url + "/")
            for name, path in pages.items():
                pg.goto(site.url + path)
                problems += check(pg, shots, f"{name}-{width}-{scheme}")
            pg.goto(site.url + pages["empty-campaign"])
            figures = pg.locator(".figures").inner_text()
            assert "0.0%" not in figures and "no opens yet" in figures and "1 message" in figures
            if width == 390:
                pg.goto(site.url + pages["campaign"])
                for big in pg.locator(".fig .big").all():
                    box = big.bounding_box()
                    assert box and box["x"] + box["width"] <= width, "rate off-screen"
            ctx.close()
    assert not problems, "\n".join(problems)


def check(pg: Any, shots: Path, name: str) -> list[str]:
    pg.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    m = pg.evaluate(MEASURE)
    out = []
    if m["scroll"] > m["inner"]:
        out.append(f"{name}: scrollWidth {m['scroll']} > {m['inner']}: {m['wide']}")
    if m["tiny"]:
        out.append(f"{name}: chart text under 11 px: {m['tiny'][:3]}")
    dark = name.endswith("dark")
    if (m["bg"] == "rgb(255, 255, 255)") == dark:
        out.append(f"{name}: background {m['bg']} in {'dark' if dark else 'light'} mode")
    if not m["icon"] or not m["icon"].endswith("/static/favicon.svg"):
        out.append(f"{name}: no favicon link")
    if m["squeezed"]:
        out.append(f"{name}: URL squeezed: {m['squeezed'][:3]}")
    return out


def test_times_in_the_users_zone(site: Server, browser: Any) -> None:
    """Relative times with the absolute one on hover, in the browser's zone until
    the user saves one; a zone that does not exist is refused, not made UTC."""
    ctx = browser.new_context(timezone_id="America/New_York")
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    camp = site.api("POST", "/api/v1/campaigns", json={"name": "Zones"}).json()
    msg = site.message(
        recipient="ny@example.com", campaign_id=camp["id"], sent_at=time.time() - 7300
    )
    httpx.get(
        msg["open_url"], headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.9"}
    )
    try:
        sign_in(pg, site)
        pg.goto(f"{site.url}/messages/{msg['id']}")
        assert pg.evaluate("document.documentElement.dataset.tz") == "America/New_York"
        sent = pg.locator("p.muted time").nth(1)
        assert sent.inner_text() == "2 h ago"
        assert sent.get_attribute("title").endswith((" EST", " EDT"))
        assert sent.get_attribute("datetime").endswith("Z")

        nav(pg, "Settings")
        pg.get_by_role("combobox", name="Time zone").fill("Mars/Base")
        pg.get_by_role("button", name="Save time zone").click()
        assert pg.get_by_role("alert").inner_text().startswith("“Mars/Base” is not a time zone.")
        assert pg.evaluate("document.documentElement.dataset.tz") == "America/New_York"
        pg.get_by_role("combobox", name="Time zone").fill("Asia/Tokyo")
        pg.get_by_role("button", name="Save time zone").click()
        pg.get_by_text("Saved: times are shown in Asia/Tokyo.").wait_for()

        pg.goto(f"{site.url}/messages/{msg['id']}")
        assert pg.locator("p.muted time").nth(1).get_attribute("title").endswith(" JST")
        pg.goto(f"{site.url}/campaigns/{camp['id']}")
        assert pg.get_by_text("times in Asia/Tokyo").is_visible()
        assert pg.locator("svg.heatmap[aria-label*='Asia/Tokyo']").count() == 1
        first_open = pg.locator("p.muted time").first
        assert first_open.get_attribute("title").endswith(" JST")
        pg.goto(f"{site.url}/campaigns/{camp['id']}?tz=Nowhere/Land")
        alert = pg.get_by_role("alert").inner_text()
        assert "“Nowhere/Land” is not a time zone" in alert and "shown in Asia/Tokyo" in alert
        assert pg.get_by_text("times in Asia/Tokyo").is_visible()
    finally:
        ctx.close()


def test_live_feed_opens_on_recent_hits_with_filters(page: Any, site: Server) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    camp = site.api("POST", "/api/v1/campaigns", json={"name": "Spring"}).json()
    inside = site.message(recipient="in@example.com", campaign_id=camp["id"], sent_at=time.time())
    alone = site.message(recipient="solo@example.com", sent_at=time.time() - 3600)

    def open_(msg: dict[str, Any], ip: str = "198.51.100.30") -> None:
        r = httpx.get(msg["open_url"], headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": ip})
        assert r.headers["x-mailbeacon-recorded"].startswith("yes")

    with httpx.Client() as c:  # 52 human opens: more than the feed opens on
        for _ in range(52):
            c.get(
                alone["open_url"],
                headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.31"},
            )
    httpx.head(inside["open_url"], headers={"X-Forwarded-For": "203.0.113.5"})
    open_(inside)
    sign_in(page, site)
    nav(page, "Live")
    feed = page.locator("#feed > li")
    expect(feed).to_have_count(50)
    assert page.locator("#feed-empty").is_hidden()
    assert "in@example.com opened" in feed.first.inner_text()

    page.get_by_label("Show").select_option("human")  # submits on change
    page.wait_for_url("**/live?label=human**")
    page.get_by_label("Campaign").select_option(str(camp["id"]))
    page.wait_for_url(f"**campaign={camp['id']}**")
    expect(feed).to_have_count(1)
    assert "in@example.com opened" in feed.first.inner_text()
    assert "li.human" in page.evaluate("'li.' + document.querySelector('#feed > li').classList[1]")

    # Live hits obey the same filters: another message's open is left out.
    page.wait_for_selector("#feed-status:has-text('connected')")
    open_(alone, "198.51.100.32")
    open_(inside, "198.51.100.33")
    expect(feed).to_have_count(2)
    assert "solo@example.com" not in page.locator("#feed").inner_text()


NOTIFIED = """async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => n.title + " | " + n.body);
}"""


def test_notification_preferences_and_installable_app(
    site: Server, browser: Any, shots: Path
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    manifest = httpx.get(site.url + "/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    app = manifest.json()
    assert app["start_url"] == "/" and app["display"] == "standalone"
    for icon in app["icons"]:
        assert httpx.get(site.url + icon["src"]).status_code == 200, icon
    camp = site.api("POST", "/api/v1/campaigns", json={"name": "Outreach"}).json()

    ctx = browser.new_context()
    ctx.grant_permissions(["notifications"], origin=site.url)
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    try:
        sign_in(pg, site)
        scope = pg.evaluate("async () => (await navigator.serviceWorker.ready).scope")
        assert scope == site.url + "/"
        nav(pg, "Settings")
        assert pg.get_by_label("1-to-1 messages only").is_checked()  # the quiet default
        assert pg.get_by_text("Allowed in this browser.").is_visible()

        def opened(subject: str, campaign: int | None = None) -> None:
            extra = {"campaign_id": campaign} if campaign else {}
            m = site.message(
                recipient="r@example.com", subject=subject, sent_at=time.time(), **extra
            )
            hit = httpx.get(
                m["open_url"],
                headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": "198.51.100.40"},
            )
            assert hit.headers["x-mailbeacon-recorded"].startswith("yes")

        nav(pg, "Live")
        pg.wait_for_selector("#feed-status:has-text('connected')")
        opened("In the campaign", camp["id"])
        opened("Just to you")
        feed = pg.locator("#feed > li")
        expect(feed.filter(has_text="Just to you")).to_have_count(1)
        shown = pg.evaluate(NOTIFIED)
        assert shown == ["Opened: Just to you | r@example.com — Opened (Read by a person)"], shown

        nav(pg, "Settings")
        pg.get_by_label("these campaigns").check()
        pg.get_by_label("Outreach").check()
        pg.get_by_label("the first time a person opens a message").uncheck()
        pg.get_by_role("button", name="Save notification settings").click()
        pg.get_by_text("Notification settings saved.").wait_for()
        assert pg.get_by_label("Outreach").is_checked()
        pg.screenshot(path=str(shots / "settings-notifications.png"), full_page=True)
        pg.goto(site.url + "/live")
        pg.wait_for_selector("#feed-status:has-text('connected')")
        opened("Campaign again", camp["id"])  # first opens are no longer wanted
        expect(feed.filter(has_text="Campaign again")).to_have_count(1)
        m = site.message(
            recipient="c@example.com",
            subject="With a link",
            campaign_id=camp["id"],
            sent_at=time.time() - 3600,
            links=["https://example.com/offer"],
        )
        httpx.get(
            m["links"][0]["tracked_url"],
            headers={"User-Agent": CHROME, "X-Forwarded-For": "198.51.100.41"},
        )
        deadline = time.monotonic() + 15
        while len(shown := pg.evaluate(NOTIFIED)) < 2 and time.monotonic() < deadline:
            pg.wait_for_timeout(100)
        # The click came last, so the first open ("Campaign again") was not shown.
        assert sorted(shown)[0].startswith("Clicked: With a link | c@example.com"), shown
    finally:
        ctx.close()


LONG_SUBJECT = (
    "Your proposal for the website redesign and two years of hosting, revised after Tuesday's call"
)


def test_campaign_page_says_the_ab_verdict_and_send_time(site: Server, browser: Any) -> None:
    """Each variant's subject line, the A/B sentence above the table, and the
    send-time advice above the heatmap, in the zone the page is shown in; the
    page still fits 390 px with a long subject."""
    camp = site.api("POST", "/api/v1/campaigns", json={"name": "Subjects"}).json()
    for i in range(10):
        variant, subject = ("A", "Spring offer: 20% off") if i % 2 else ("B", LONG_SUBJECT)
        msg = site.message(
            recipient=f"p{i}@example.com", campaign_id=camp["id"], variant=variant,
            subject=subject, sent_at=time.time() - 7200,
        )  # fmt: skip
        r = httpx.get(
            msg["open_url"],
            headers={"User-Agent": THUNDERBIRD, "X-Forwarded-For": f"198.51.100.{40 + i}"},
        )
        assert r.headers["x-mailbeacon-recorded"].startswith("yes")
    path = f"/campaigns/{camp['id']}"

    def report(tz: str) -> dict[str, Any]:
        got = site.api("GET", f"/api/v1/campaigns/{camp['id']}/report", params={"tz": tz})
        return dict(got.json())

    tokyo = report("Asia/Tokyo")
    assert tokyo["send_time_advice"]["text"].startswith("Most first opens: ")
    assert "(Asia/Tokyo), 10 of 10 people (100%)." in tokyo["send_time_advice"]["text"]
    assert tokyo["variants_verdict"] == (
        "No winner yet: A opened 100% (5 of 5), B 100% (5 of 5); the same rate, nothing "
        "tells them apart."
    )
    for width in (1280, 390):
        ctx = browser.new_context(viewport={"width": width, "height": 900})
        pg = ctx.new_page()
        pg.set_default_timeout(15_000)
        try:
            sign_in(pg, site)
            pg.goto(f"{site.url}{path}?tz=Asia/Tokyo")
            advice = pg.locator("[data-send-time]")
            assert advice.inner_text() == tokyo["send_time_advice"]["text"]
            # Right above the heatmap, in the same section.
            assert pg.locator("[data-send-time] + svg.heatmap").count() == 1
            section = pg.locator("section:has(h2:text('Variants'))")
            assert (
                section.locator("[data-variants-verdict]").inner_text()
                == (tokyo["variants_verdict"])
            )
            rows = section.locator("tbody tr").all_inner_texts()
            assert "Spring offer: 20% off" in rows[0] and LONG_SUBJECT in rows[1]
            assert "same rate" not in rows[0]  # the cell says it per variant
            assert "too few messages to tell (p = 1)" in rows[0]
            # The zone selector moves the advice with the heatmap.
            pg.get_by_label("Time zone").fill("UTC")
            pg.get_by_role("button", name="Show").click()
            pg.wait_for_url("**tz=UTC**")
            assert (
                pg.locator("[data-send-time]").inner_text()
                == (report("UTC")["send_time_advice"]["text"])
            )
            assert "(UTC), 10 of 10 people" in pg.locator("[data-send-time]").inner_text()
            scroll, inner = pg.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"scrollWidth {scroll} > {inner} at {width} px"
        finally:
            ctx.close()
