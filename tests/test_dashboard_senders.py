"""Settings → Senders in a real browser (Debian's Chromium) against a real
`serve --smtp-port` whose upstream is the aiosmtpd stub: add a sender from
the form and see its SMTP password once, sign in over SMTP with it, reset it
(the old one stops working), change its tracking, see its copies in the
queue with their state (sent, bounced, retrying), remove it after the
confirmation page. The upstream password never comes back in a page; forms
need the session's CSRF token; the pages fit a 390 px phone.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests import dashboard_helpers
from tests.dashboard_helpers import needs_chromium
from tests.helpers import Server, cli, free_port, start_server, wait_for
from tests.relay_helpers import Relay, Stub, mail, start_relay

EMAIL, PASSWORD = "owner@example.com", "a long passphrase"
BEA = "bea@example.com"
SECRET = "upstream-secret-pw"  # the upstream password: never in a page
PATH = "/settings/senders"
# What sticks out past the right edge (named in the failure at 390 px).
OVERFLOWING = """() => Array.from(document.querySelectorAll("main *"))
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
  .map((e) => `${e.tagName}.${e.className}#${e.id}`).slice(0, 8)"""

pytestmark = needs_chromium


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, stub: tuple[Stub, Controller]) -> Iterator[Relay]:
    """A relay (one sender made by the CLI, ana@example.com) and a dashboard user."""
    box, ctl = stub
    # "later@": the upstream says "try later" every time; "gone@": refused for good.
    box.rcpt_answer = lambda r: (
        "451 4.2.0 mailbox busy, try later"
        if r.startswith("later")
        else ("550 5.1.1 no such user" if r.startswith("gone") else None)
    )
    relay = start_relay(sqlite_url, tmp_path, ctl.port)
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=sqlite_url)
    try:
        yield relay
    finally:
        relay.server.stop()


def assert_fits(phone: Any) -> None:
    """No sideways scroll on the page ``phone`` shows (390 px wide)."""
    scroll, inner = phone.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    wide = phone.evaluate(OVERFLOWING)
    assert scroll <= inner, f"{phone.url}: scrollWidth {scroll} > {inner} at 390 px {wide}"


def signed_in(browser: Any, server: Server, width: int, path: str = PATH) -> Any:
    return dashboard_helpers.signed_in(browser, server.url + path, width, EMAIL, PASSWORD)


def smtp_login(relay: Relay, login: str, password: str) -> bool:
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        try:
            smtp.login(login, password)
        except smtplib.SMTPAuthenticationError:
            return False
        return True


def add(pg: Any, email: str, upstream: str, track: str | None = None) -> None:
    pg.get_by_label("Sender address").fill(email)
    pg.get_by_label("Upstream SMTP URL").fill(upstream)
    if track:
        pg.get_by_label("Tracking").select_option(track)
    pg.get_by_role("button", name="Add sender").click()


def copy_row(pg: Any, recipient: str) -> Any:
    return pg.locator(f'#copies tr[data-recipient="{recipient}"]')


def state_after_reload(pg: Any, recipient: str, state: str) -> bool:
    pg.reload()
    row = copy_row(pg, recipient)
    return bool(row.count() and row.first.locator("[data-state]").inner_text() == state)


def test_add_send_reset_and_remove(
    site: Relay, browser: Any, stub: tuple[Stub, Controller]
) -> None:
    srv, upstream = site.server, f"smtp://bea%40example.com:{SECRET}@127.0.0.1:{stub[1].port}"
    pg = signed_in(browser, srv, 1280, "/settings")
    pg.get_by_role("main").get_by_role("link", name="Senders").click()
    pg.wait_for_url(srv.url + PATH)
    assert pg.locator('#senders tr[data-sender="ana@example.com"]').count() == 1

    # Added from the form: the SMTP password once, on the sender's page.
    add(pg, BEA, upstream + "?tls=none", "clicks")
    assert f"Sender {BEA} created" in pg.locator("#password-note").inner_text()
    first = pg.locator("#new-password").input_value()
    assert len(first) >= 20 and first in pg.content()
    assert SECRET not in pg.content()
    assert smtp_login(site, BEA, first)
    pg.goto(srv.url + PATH + "/" + BEA)  # not shown again
    assert pg.locator("#new-password").count() == 0 and first not in pg.content()
    assert SECRET not in pg.content()
    assert "bea%40example.com@127.0.0.1" in pg.locator("main").inner_text()
    for other in (f"{PATH}/{BEA}/remove", "/settings", PATH):  # nor on the others
        pg.goto(srv.url + other)
        assert SECRET not in pg.content() and first not in pg.content(), other
    assert "bea%40example.com@127.0.0.1" in pg.locator("#senders").inner_text()
    pg.goto(srv.url + PATH + "/" + BEA)

    # What a mail client needs: this server's host, port and the login.
    assert pg.locator("[data-smtp-host]").inner_text() == "127.0.0.1"
    assert pg.locator("[data-smtp-port]").all_inner_texts() == [str(site.smtp_port)]
    assert pg.locator("[data-smtp-security]").inner_text() == "None"
    assert pg.locator("[data-smtp-login]").inner_text() == BEA
    assert pg.locator("#smtp-local").is_visible() and pg.locator("#smtp-plain").is_visible()
    pg.get_by_text("Thunderbird", exact=True).click()
    steps = pg.locator("#steps-thunderbird").inner_text()
    assert f"Server Name 127.0.0.1; Port {site.smtp_port}; Connection security None" in steps
    for client in ("steps-apple", "steps-outlook", "steps-gmail"):
        text = pg.locator(f"#{client}").text_content()
        assert "127.0.0.1" in text and str(site.smtp_port) in text and BEA in text

    # Reset: a new password once; the old one no longer signs in.
    pg.get_by_role("button", name="Reset password").click()
    second = pg.locator("#new-password").input_value()
    assert (
        second != first and "old one no longer works" in pg.locator("#password-note").inner_text()
    )
    assert not smtp_login(site, BEA, first)
    assert smtp_login(site, BEA, second)

    # Tracking mode, post/redirect/get.
    pg.goto(srv.url + PATH + "/" + BEA)
    pg.get_by_label("Tracking mode").select_option("all")
    pg.get_by_role("button", name="Save tracking").click()
    pg.wait_for_url(re.compile(r".*\?saved=track$"))
    assert "Tracking is now: Opens and clicks" in pg.get_by_role("status").inner_text()
    assert pg.get_by_label("Tracking mode").input_value() == "all"

    # The queue: one copy sent, one refused for good, one waiting and retried
    # (the stub takes no AUTH: the upstream without its user from now on).
    cli("senders", "set", BEA, "--upstream", f"smtp://127.0.0.1:{stub[1].port}?tls=none",
        db=srv.db)  # fmt: skip
    raw = mail(sender=BEA, to=["ok@example.org", "gone@example.org", "later@example.org"])
    Relay(srv, site.smtp_port, BEA, second, upstream).send(
        raw, ["ok@example.org", "gone@example.org", "later@example.org"]
    )
    wait_for(lambda: state_after_reload(pg, "later@example.org", "retrying"), "a retry")
    assert copy_row(pg, "ok@example.org").locator("[data-state]").inner_text() == "sent"
    assert "sent" in copy_row(pg, "ok@example.org").locator(".copy-detail").inner_text()
    gone = copy_row(pg, "gone@example.org")
    assert gone.locator("[data-state]").inner_text() == "bounced"
    assert "550 5.1.1 no such user" in gone.locator("[data-reply]").inner_text()
    later = copy_row(pg, "later@example.org").inner_text()
    assert "so far" in later and "next try" in later and "451" in later
    assert "Our proposal" in copy_row(pg, "ok@example.org").inner_text()
    assert copy_row(pg, "ok@example.org").locator("time").count() == 2  # created, sent
    assert "Bounce report" in copy_row(pg, BEA).inner_text()  # the report about gone@
    pg.goto(srv.url + PATH)  # every sender's copies, with the sender
    assert copy_row(pg, "ok@example.org").get_by_role("link", name=BEA).count() == 1
    assert "waiting" in pg.locator(f'#senders tr[data-sender="{BEA}"]').inner_text()

    # A refused form: the reason, the address kept, the URL (and password) not.
    add(pg, "x@example.com", "smtp://x:leaky-secret@host:notaport")
    assert "does not parse" in pg.get_by_role("alert").inner_text()
    assert "leaky-secret" not in pg.content()
    assert pg.get_by_label("Sender address").input_value() == "x@example.com"
    assert pg.get_by_label("Upstream SMTP URL").input_value() == ""
    add(pg, BEA, upstream)
    assert "already a sender" in pg.get_by_role("alert").inner_text()
    assert SECRET not in pg.content()

    # Forms without the session's token are refused; nothing changes.
    for action in ("/remove", "/password"):
        forged = pg.request.post(
            srv.url + PATH + "/" + BEA + action, form={"csrf": "forged"}, max_redirects=0
        )
        assert forged.status == 403
    assert smtp_login(site, BEA, second)

    # Remove asks first; Cancel keeps it, confirming removes it.
    pg.goto(srv.url + PATH)
    row = pg.locator(f'#senders tr[data-sender="{BEA}"]')
    row.get_by_role("link", name="Remove").click()
    assert pg.get_by_role("heading", name=f"Remove sender {BEA}?").is_visible()
    assert "will never be sent" in pg.locator("main").inner_text()  # the waiting copy
    assert SECRET not in pg.content()
    pg.get_by_role("link", name="Cancel").click()
    pg.wait_for_url(srv.url + PATH + "/" + BEA)
    pg.goto(srv.url + PATH)
    row.get_by_role("link", name="Remove").click()
    pg.get_by_role("button", name="Remove sender").click()
    pg.wait_for_url(re.compile(re.escape(srv.url + PATH) + r"\?removed="))
    assert f"Removed sender {BEA}" in pg.get_by_role("status").inner_text()
    assert row.count() == 0
    assert not smtp_login(site, BEA, second)
    assert pg.goto(srv.url + PATH + "/" + BEA).status == 404
    pg.context.close()

    # At 390 px, the list and a sender's page with its queue: no sideways scroll.
    phone = signed_in(browser, srv, 390)
    ana = srv.url + PATH + "/ana@example.com"
    site.send(
        mail(to=["later@example.org", "ok@example.org"]), ["later@example.org", "ok@example.org"]
    )
    for url in (srv.url + PATH, ana, ana + "/remove"):
        phone.goto(url)
        assert_fits(phone)
    phone.context.close()


def test_without_smtp_the_page_says_how_to_enable_it(
    sqlite_url: str, tmp_path: Path, browser: Any
) -> None:
    cli("senders", "create", "--email", BEA, "--upstream", "smtp://mail.example.com",
        db=sqlite_url)  # fmt: skip
    srv = start_server(sqlite_url, tmp_path)
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=sqlite_url)
    try:
        pg = signed_in(browser, srv, 1280, PATH + "/" + BEA)
        off = pg.locator("#smtp-off").inner_text()
        assert "SMTP is not enabled" in off and "mailbeacon serve --smtp-port 587" in off
        assert pg.locator("[data-smtp-port]").count() == 0
        assert pg.locator("#steps").count() == 0
        assert pg.locator("[data-smtp-login]").inner_text() == BEA
        pg.context.close()
    finally:
        srv.stop()


def test_edit_the_upstream_and_the_from_addresses(
    site: Relay, browser: Any, stub: tuple[Stub, Controller]
) -> None:
    """A sender's page edits what `senders set --upstream/--also` does, with
    the same checks, and the relay follows at once."""
    srv, box, port = site.server, stub[0], stub[1].port
    ana = srv.url + PATH + "/" + site.login
    cli("senders", "create", "--email", BEA, "--upstream", "smtp://h", db=srv.db)
    flaky = {"on": True}  # the stub says "later" to flaky@ until this is off
    box.rcpt_answer = lambda r: (
        ("451 4.2.0 busy" if r.startswith("flaky") and flaky["on"] else None)
        or ("550 5.1.1 no such user" if r.startswith("gone") else None)
    )
    pg = signed_in(browser, srv, 1280, PATH + "/" + site.login)
    csrf = pg.locator("input[name=csrf]").first.input_value()
    saved = f"smtp://127.0.0.1:{port}?tls=none"

    def upstream_form() -> tuple[str, ...]:
        labels = ("Upstream host", "Upstream port", "Connection security", "Upstream login")
        return tuple(pg.get_by_label(name).input_value() for name in labels)

    def save_upstream(host: str, port_typed: str) -> None:
        pg.get_by_label("Upstream host").fill(host)
        pg.get_by_label("Upstream port").fill(port_typed)
        pg.get_by_role("button", name="Save upstream").click()

    # The form shows what is saved, without any password.
    assert upstream_form() == ("127.0.0.1", str(port), "none", "")
    assert pg.locator("[data-upstream]").inner_text() == saved

    # Refused, one line each, and nothing saved.
    for host, port_typed, says in [
        ("bad host", str(port), "is not a host name"),
        ("a,b.example.com", str(port), "is not a host name"),
        ("127.0.0.1", "70000", "from 1 to 65535"),
        ("127.0.0.1", "0", "from 1 to 65535"),
    ]:
        save_upstream(host, port_typed)
        alert = pg.locator("#upstream-error").inner_text()
        assert says in alert and "\n" not in alert, (host, port_typed, alert)
        assert pg.get_by_label("Upstream host").input_value() == host  # kept to correct
        assert pg.locator("[data-upstream]").inner_text() == saved
    fields = {"csrf": csrf, "port": str(port), "security": "none", "user": "", "password": ""}
    for bad in ({"host": "127.0.0.1\r\nRCPT TO:<x@evil.example>"}, {"security": "ssl3"}):
        got = pg.request.post(ana + "/upstream", form={**fields, "host": "127.0.0.1", **bad})
        assert got.status == 422 and "Traceback" not in got.text()
        assert 'role="alert"' in got.text()
    # A copy the upstream does not take yet: queued, retried.
    site.send(
        mail(to=["ok@example.org", "flaky@example.org"]), ["ok@example.org", "flaky@example.org"]
    )
    wait_for(lambda: state_after_reload(pg, "flaky@example.org", "retrying"), "a retry")

    # A wrong port: the next copies and the retries go there.
    wrong = free_port()
    save_upstream("127.0.0.1", str(wrong))
    pg.wait_for_url(re.compile(r".*\?saved=upstream#upstream$"))
    assert f"127.0.0.1:{wrong}" in pg.locator("#upstream-saved").inner_text()
    assert pg.locator("[data-upstream]").inner_text() == f"smtp://127.0.0.1:{wrong}?tls=none"
    flaky["on"] = False
    with pytest.raises(smtplib.SMTPDataError) as refused:  # nothing taken: try again later
        site.send(mail(to=["new@example.org"]), ["new@example.org"])
    assert refused.value.smtp_code == 451 and f":{wrong}" in str(refused.value.smtp_error)

    def reply_of(recipient: str) -> str:
        pg.reload()
        return str(copy_row(pg, recipient).locator("[data-reply]").inner_text())

    wait_for(lambda: f"127.0.0.1:{wrong} unreachable" in reply_of("flaky@example.org"), "a try")
    assert copy_row(pg, "flaky@example.org").locator("[data-state]").inner_text() == "retrying"
    # Back to the right one: the waiting copy goes out.
    pg.goto(ana)
    save_upstream("127.0.0.1", str(port))
    pg.wait_for_url(re.compile(r".*\?saved=upstream#upstream$"))
    wait_for(lambda: state_after_reload(pg, "flaky@example.org", "sent"), "the copy sent")
    assert any("flaky@example.org" in d.rcpts for d in box.deliveries)

    # A login and password: the password is never shown; empty keeps it.
    pg.get_by_label("Upstream login").fill("ana-upstream")
    pg.get_by_label("Upstream password", exact=True).fill(SECRET)
    pg.get_by_role("button", name="Save upstream").click()
    pg.wait_for_url(re.compile(r".*\?saved=upstream#upstream$"))
    assert "with the saved password" in pg.locator("#upstream-saved").inner_text()
    assert SECRET not in pg.content()
    assert pg.get_by_label("Upstream password", exact=True).input_value() == ""
    assert "leave empty to keep it" in str(
        pg.get_by_label("Upstream password", exact=True).get_attribute("placeholder")
    )
    pg.get_by_label("Connection security").select_option("starttls")
    pg.get_by_role("button", name="Save upstream").click()
    pg.wait_for_url(re.compile(r".*\?saved=upstream#upstream$"))
    assert "with the saved password" in pg.locator("#upstream-saved").inner_text()
    listed = cli("senders", "list", db=srv.db).stdout
    assert f"smtp://ana-upstream@127.0.0.1:{port}" in listed and SECRET not in listed
    pg.get_by_label("Connection security").select_option("none")
    pg.get_by_label("Upstream login").fill("")  # the stub takes no AUTH
    pg.get_by_role("button", name="Save upstream").click()
    pg.wait_for_url(re.compile(r".*\?saved=upstream#upstream$"))
    assert pg.locator("[data-upstream]").inner_text() == saved
    assert "saved password" not in pg.locator("#upstream-saved").inner_text()

    # Other From addresses: the relay takes one once it is added.
    sales = "sales@example.com"

    def also_list() -> list[str]:
        return list(
            pg.locator("#also-list [data-also]").evaluate_all(
                "items => items.map((li) => li.dataset.also)"
            )
        )

    def send_as(address: str) -> Any:
        raw = mail(sender=address, to=["ok@example.org"])
        return site.send(raw, ["ok@example.org"], mail_from=address)

    with pytest.raises(smtplib.SMTPSenderRefused) as not_yet:
        send_as(sales)
    assert not_yet.value.smtp_code == 550
    assert pg.locator("#also-none").is_visible()
    pg.get_by_label("Add a From address").fill(sales.upper())
    pg.get_by_role("button", name="Add address").click()
    pg.wait_for_url(re.compile(r".*\?saved=also#also$"))
    assert f"{site.login}, {sales}" in pg.locator("#also-saved").inner_text()
    assert also_list() == [sales]
    before = len(box.deliveries)
    assert send_as(sales) == {}
    delivered = box.wait(before + 1)[-1]
    assert delivered.mail_from == sales and sales in delivered.message["From"]

    # Refused: not an address, another sender's, its own; nothing saved.
    for typed, says in [
        ("x@localhost", "is not an email address"),
        (BEA, f"already an address of the sender {BEA}"),
        (site.login, "already an address of this sender"),
        (sales, "already an address of this sender"),
    ]:
        pg.get_by_label("Add a From address").fill(typed)
        pg.get_by_role("button", name="Add address").click()
        alert = pg.locator("#also-error").inner_text()
        assert says in alert and "\n" not in alert, (typed, alert)
        assert also_list() == [sales]
    for typed in ("not an address", "x\r\n@example.com", ""):
        got = pg.request.post(ana + "/also", form={"csrf": csrf, "address": typed})
        assert got.status == 422 and "not an email address" in got.text()
        assert "Traceback" not in got.text()

    # Forms without the session's token are refused; nothing changes.
    for action, form in [
        ("/upstream", {**fields, "host": "evil.example"}),
        ("/also", {"address": "evil@example.com"}),
        ("/also/remove", {"address": sales}),
    ]:
        forged = pg.request.post(ana + action, form={**form, "csrf": "forged"}, max_redirects=0)
        assert forged.status == 403, action
    pg.goto(ana)
    assert pg.locator("[data-upstream]").inner_text() == saved
    assert also_list() == [sales]

    # Removed: the relay refuses it again (a new SMTP session).
    pg.get_by_role("button", name=f"Remove {sales}").click()
    pg.wait_for_url(re.compile(r".*\?saved=also#also$"))
    assert pg.locator("#also-list").count() == 0 and pg.locator("#also-none").is_visible()
    with pytest.raises(smtplib.SMTPSenderRefused) as gone:
        send_as(sales)
    assert gone.value.smtp_code == 550
    pg.context.close()

    # At 390 px: the forms and the From addresses fit.
    cli("senders", "set", site.login, "--also", "a-rather-long-address@sales.example.com",
        db=srv.db)  # fmt: skip
    phone = signed_in(browser, srv, 390, PATH + "/" + site.login)
    for url in (ana, ana + "/remove"):
        phone.goto(url)
        assert_fits(phone)
    phone.goto(ana)  # with a refusal shown
    phone.get_by_label("Upstream host").fill(
        "a-very-long-host-name-that-is-not-one name.example.com"
    )
    phone.get_by_role("button", name="Save upstream").click()
    assert phone.locator("#upstream-error").is_visible()
    assert_fits(phone)
    phone.context.close()


def test_the_queue_pages_back_and_filters_by_state(site: Relay, browser: Any) -> None:
    """The newest 50 copies on a sender's page, 30 on the list; "Older" pages
    back to the first copy, "Show" keeps one state."""
    srv, ana = site.server, site.server.url + PATH + "/" + site.login
    site.send(
        mail(to=["first@example.org", "ok@example.org"]), ["first@example.org", "ok@example.org"]
    )
    many = [f"r{i:02}@example.org" for i in range(50)] + ["gone@example.org"]
    site.send(mail(to=many), many)  # 54 copies with the bounce report about gone@
    pg = signed_in(browser, srv, 1280, PATH + "/" + site.login)
    first = pg.locator("#copies tr[data-copy]").evaluate_all(
        "rows => rows.map((r) => r.dataset.copy)"
    )
    assert len(first) == 50 and pg.locator("#copies-pages a", has_text="Newest").count() == 0
    pg.get_by_role("link", name="Older").click()
    pg.wait_for_url(re.compile(r".*\?before=\d+#copies$"))
    older = pg.locator("#copies tr[data-copy]").evaluate_all(
        "rows => rows.map((r) => r.dataset.copy)"
    )
    assert older and not set(older) & set(first)
    assert max(map(int, older)) < min(map(int, first))
    assert copy_row(pg, "first@example.org").count() == 1  # the earlier ones are here
    assert len(older) == 54 - 50 and pg.get_by_role("link", name="Older").count() == 0
    pg.get_by_role("link", name="Newest").click()
    pg.wait_for_url(re.compile(r".*#copies$"))
    assert pg.locator("#copies tr[data-copy]").count() == 50

    # Only the bounced ones, then only the retrying ones (none left).
    pg.get_by_label("Show").select_option("bounced")
    pg.get_by_role("button", name="Show").click()
    pg.wait_for_url(re.compile(r".*\?state=bounced#copies$"))
    assert pg.locator("#copies [data-state]").all_inner_texts() == ["bounced"]
    assert copy_row(pg, "gone@example.org").count() == 1
    pg.get_by_label("Show").select_option("retrying")
    pg.get_by_role("button", name="Show").click()
    assert pg.locator("#copies .empty").inner_text() == "No retrying copies."
    pg.goto(srv.url + PATH)  # every sender's newest 30, then the 24 older
    ids = "rows => rows.map((r) => Number(r.dataset.copy))"
    newest = pg.locator("#copies tr[data-copy]").evaluate_all(ids)
    pg.get_by_role("link", name="Older").click()
    pg.wait_for_url(re.compile(r".*\?before=\d+#copies$"))
    rest = pg.locator("#copies tr[data-copy]").evaluate_all(ids)
    assert (len(newest), len(rest)) == (30, 54 - 30) and max(rest) < min(newest)
    assert pg.get_by_role("link", name="Newest").count() == 1
    assert pg.get_by_role("link", name="Older").count() == 0  # no more
    for junk in ("?before=%C2%B2&state=nope", "?before=99999999999999999999999", "?before=-1"):
        assert pg.goto(ana + junk).status == 200, junk  # ignored: the newest page
        assert pg.locator("#copies tr[data-copy]").count() == 50
    pg.context.close()

    # At 390 px: the pages of copies fit.
    phone = signed_in(browser, srv, 390)
    for url in (ana + f"?before={max(rest)}&state=sent", srv.url + PATH + f"?before={max(rest)}"):
        phone.goto(url)
        assert phone.locator("#copies tr[data-copy]").count() > 0
        assert_fits(phone)
    phone.context.close()
