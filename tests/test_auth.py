"""Dashboard sign-in: sessions, cookie flags, CSRF, the login rate limit."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import Running, Server, cli, rows

EMAIL, PASSWORD = "owner@example.com", "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(srv: Running, email: str = EMAIL, password: str = PASSWORD) -> httpx.Client:
    """A client signed in to the dashboard of ``srv``."""
    c = srv.session()
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"email": email, "password": password, "csrf": token})
    assert r.status_code == 303, r.text
    return c


def owner_session(srv: Running) -> httpx.Client:
    """Create the dashboard's owner (``EMAIL``) and sign in as them."""
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=srv.db)
    return login(srv)


@pytest.fixture
def owner(server: Server) -> Server:
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=server.db)
    return server


def test_pages_need_a_session(server: Server) -> None:
    r = httpx.get(server.url + "/settings")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/settings"
    page = httpx.get(server.url + "/login").text
    assert "mailbeacon users create --email" in page  # no user yet: say how


def test_login_sets_strict_cookies_and_logout_ends_the_session(owner: Server) -> None:
    c = httpx.Client(base_url=owner.url, timeout=15)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"email": EMAIL.upper(), "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    cookies = {h.split("=", 1)[0]: h.lower() for h in r.headers.get_list("set-cookie")}
    assert "httponly" in cookies["mb_session"] and "samesite=lax" in cookies["mb_session"]
    assert "secure" not in cookies["mb_session"]  # http base URL
    assert "mb_sender" in cookies and "max-age=31536000" in cookies["mb_sender"]
    assert c.get("/").status_code == 200
    stored = rows(owner.db, "SELECT id FROM sessions")
    assert len(stored) == 1 and stored[0][0] != c.cookies["mb_session"]  # only a hash
    session = c.cookies["mb_session"]
    r = c.post("/logout", data={"csrf": csrf_of(c.get("/").text)})
    assert r.status_code == 303
    again = httpx.get(owner.url + "/", cookies={"mb_session": session})
    assert again.status_code == 303  # the old cookie is dead on the server too


def test_every_post_checks_the_csrf_token(owner: Server) -> None:
    c = login(owner)
    for data in ({}, {"csrf": "wrong"}):
        r = c.post("/track", data={"recipient": "ana@example.com", **data})
        assert r.status_code == 403, r.text
        assert c.post("/settings/keys", data={"name": "x", **data}).status_code == 403
        assert c.post("/logout", data=data).status_code == 403
    assert rows(owner.db, "SELECT count(*) FROM messages") == [(0,)]
    ok = c.post("/track", data={"recipient": "ana@example.com", "csrf": csrf_of(c.get("/").text)})
    assert ok.status_code == 201
    # The login form is protected too (double-submit cookie).
    fresh = httpx.Client(base_url=owner.url)
    fresh.get("/login")
    r = fresh.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403


def test_failed_logins_are_rate_limited(owner: Server) -> None:
    c = httpx.Client(base_url=owner.url, timeout=15)
    token = csrf_of(c.get("/login").text)
    for _ in range(5):
        r = c.post("/login", data={"email": EMAIL, "password": "wrong password", "csrf": token})
        assert r.status_code == 401
    r = c.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # Another account from the same address is not locked out.
    cli("users", "create", "--email", "other@example.com", "--password", PASSWORD, db=owner.db)
    login(owner, "other@example.com")


def test_users_cli(owner: Server) -> None:
    out = cli("users", "list", db=owner.db).stdout
    assert EMAIL in out
    dup = cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=owner.db, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stdout + dup.stderr
    short = cli(
        "users",
        "create",
        "--email",
        "x@example.com",
        "--password",
        "short",
        db=owner.db,
        check=False,
    )
    assert short.returncode == 1
    c = login(owner)
    cli("users", "password", "--email", EMAIL, "--password", "a new password", db=owner.db)
    assert c.get("/").status_code == 303  # a new password ends every session
    login(owner, password="a new password")
