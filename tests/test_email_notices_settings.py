"""Settings -> Email notices: set up from the dashboard, used at once, no restart.

A real `serve` started with no SMTP settings at all, a real SMTP server
(aiosmtpd) and the dashboard's forms over HTTP: save the settings, send a
test email, see a first human open emailed to the address typed in, forget
the settings. The SMTP password never comes back in a page nor sits in the
store in clear.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from mailbeacon.notify import email_settings
from tests.helpers import Server, cli, free_port, rows, start_server
from tests.test_auth import csrf_of, login
from tests.test_notify_smtp import THUNDERBIRD, Inbox, hit

EMAIL, PASSWORD = "owner@example.com", "correct horse battery"
SMTP_PASSWORD = "never-shown-smtp-pw"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, port
    ctl.stop()


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {"MAILBEACON_WEBHOOK_BACKOFF_BASE": "0.2"}
    srv = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"], env=env)
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=db_url)
    try:
        yield srv
    finally:
        srv.stop()


def post(c: httpx.Client, path: str, **form: str) -> httpx.Response:
    return c.post(path, data={"csrf": csrf_of(c.get("/settings").text), **form})


def wait_for_mail(box: Inbox, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(box.mails) < count:
        assert time.monotonic() < deadline, f"{len(box.mails)} of {count} emails arrived"
        time.sleep(0.05)


def form(smtp_port: int, **changes: str) -> dict[str, str]:
    base = {
        "to": "me@example.com",
        "host": "127.0.0.1",
        "port": str(smtp_port),
        "security": "none",
        "user": "",
        "password": "",
        "sender": "beacon@example.com",
    }
    return {**base, **changes}


def test_set_up_from_the_page_test_email_and_first_open_without_restart(
    site: Server, inbox: tuple[Inbox, int]
) -> None:
    box, port = inbox
    c = login(site)
    assert "Off: no email is sent" in c.get("/settings").text

    r = post(c, "/settings/email", **form(port))
    assert r.status_code == 200 and "Saved. Email notices use these settings now." in r.text
    assert "an email goes to <strong>me@example.com</strong> through 127.0.0.1" in r.text

    r = post(c, "/settings/email/test")
    assert r.status_code == 200 and "Test email sent to me@example.com" in r.text
    assert [m["Subject"] for m in box.mails] == ["mailbeacon: test email"]
    assert box.mails[0]["To"] == "me@example.com"

    # The running server uses the new settings for a first human open at once.
    msg = site.message(recipient="ana@example.com", subject="Our proposal")
    hit(msg["open_url"], "198.51.100.20", THUNDERBIRD)
    wait_for_mail(box, 2)
    notice = box.mails[1]
    assert notice["To"] == "me@example.com" and notice["From"] == "beacon@example.com"
    assert "Our proposal" in notice["Subject"] and "ana@example.com" in notice["Subject"]

    r = post(c, "/settings/email/forget")
    assert "Off: no email is sent" in r.text
    other = site.message(recipient="bo@example.com", subject="Second")
    hit(other["open_url"], "198.51.100.21", THUNDERBIRD)
    # Forgotten: the open is recorded (its counter moves) and no notice is queued.
    deadline = time.monotonic() + 20
    while rows(site.db, "SELECT count(*) FROM events WHERE message_id = ?", [other["id"]]) == [
        (0,)
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rows(site.db, "SELECT count(*) FROM outbox WHERE channel = 'email'") == [(1,)]


def test_the_smtp_password_is_sealed_and_never_shown(
    site: Server, inbox: tuple[Inbox, int]
) -> None:
    _box, port = inbox
    c = login(site)
    r = post(c, "/settings/email", **form(port, user="beacon", password=SMTP_PASSWORD))
    assert r.status_code == 200, r.text
    assert SMTP_PASSWORD not in r.text and SMTP_PASSWORD not in c.get("/settings").text
    assert "saved: leave empty to keep it" in r.text
    (stored,) = rows(site.db, "SELECT value FROM settings WHERE name = 'email_notices'")
    assert SMTP_PASSWORD not in stored[0] and '"user": "beacon"' in stored[0]

    # Saved again without typing the password: the sealed one is kept.
    post(c, "/settings/email", **form(port, user="beacon", to="other@example.com"))
    (again,) = rows(site.db, "SELECT value FROM settings WHERE name = 'email_notices'")
    assert '"password": ""' not in again[0] and "other@example.com" in again[0]

    # This SMTP server offers no AUTH: the test email says so in one line.
    r = post(c, "/settings/email/test")
    assert r.status_code == 502
    assert "The test email was not sent (" in r.text and "check the host, port" in r.text
    assert "Traceback" not in r.text and SMTP_PASSWORD not in r.text


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"port": "99999"}, "The port is a number from 1 to 65535"),
        ({"host": ""}, "Give the SMTP server&#39;s host name"),
        ({"to": "not an address"}, "is not an email address"),
        ({"security": "tls13"}, "Choose STARTTLS, SSL/TLS or none."),
    ],
)
def test_bad_settings_are_refused_with_what_to_do(
    site: Server, changes: dict[str, str], words: str
) -> None:
    c = login(site)
    r = post(c, "/settings/email", **form(2525, **changes))
    assert r.status_code == 422 and words in r.text
    assert rows(site.db, "SELECT count(*) FROM settings WHERE name = 'email_notices'") == [(0,)]
    assert "Off: no email is sent" in r.text


def test_email_settings_forms_need_the_csrf_token(site: Server) -> None:
    c = login(site)
    for path in ("/settings/email", "/settings/email/test", "/settings/email/forget"):
        assert c.post(path, data={"csrf": "forged", **form(25)}).status_code == 403
    assert rows(site.db, "SELECT count(*) FROM settings WHERE name = 'email_notices'") == [(0,)]


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("smtp.example.com", True),
        ("192.0.2.25", True),
        ("smtp.example.com\r\nRCPT TO:<x@example.com>", False),  # header/command injection
        ("smtp.example.com:587", False),  # the port has its own field
        ("user@smtp.example.com", False),
        ("a" * 254, False),
    ],
)
def test_the_smtp_host_is_one_printable_name(host: str, ok: bool) -> None:
    if ok:
        assert email_settings.check(host, "587", "starttls", "", "b@example.com", "")[0] == host
    else:
        with pytest.raises(ValueError, match="host name"):
            email_settings.check(host, "587", "starttls", "", "b@example.com", "")


def test_an_unreadable_saved_value_falls_back_to_the_config_file(sqlite_url: str) -> None:
    from mailbeacon import config
    from mailbeacon.store import keys, make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    s = config.load(db=sqlite_url)
    for broken in ('{"host": "smtp.example.com"', '{"host": 1}', "[]", "null"):
        keys.set_setting(engine, email_settings.SETTING, broken)
        got = email_settings.effective(engine, s)
        assert got == email_settings.from_config(s), broken
    engine.dispose()
