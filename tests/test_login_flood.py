"""Sign-in under attack: a limit per source network across accounts, and a
login flood that never slows the pixel down."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Server, cli, start_server
from tests.test_auth import EMAIL, PASSWORD, csrf_of


@pytest.fixture
def owner(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(sqlite_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    cli("users", "create", "--email", EMAIL, "--password", PASSWORD, db=srv.db)
    try:
        yield srv
    finally:
        srv.stop()


def _sign_in(c: httpx.Client, token: str, email: str, password: str, ip: str) -> httpx.Response:
    return c.post(
        "/login",
        data={"email": email, "password": password, "csrf": token},
        headers={"X-Forwarded-For": ip},
    )


def test_one_network_guessing_many_accounts_is_stopped(owner: Server) -> None:
    with httpx.Client(base_url=owner.url, timeout=30) as c:
        token = csrf_of(c.get("/login").text)
        # 20 accounts, one guess each, from one /24: under every per-account limit.
        for i in range(20):
            r = _sign_in(c, token, f"guess{i}@example.com", "wrong", f"198.51.100.{i + 1}")
            assert r.status_code == 401, r.text
        blocked = _sign_in(c, token, EMAIL, PASSWORD, "198.51.100.200")
        assert blocked.status_code == 429 and "from your network" in blocked.text
        # The owner from another network still gets in.
        assert _sign_in(c, token, EMAIL, PASSWORD, "203.0.113.5").status_code == 303


FLOODERS = 24


async def _flood(url: str, token: str, stop: asyncio.Event, seen: Counter[int], me: int) -> None:
    cookies = {"mb_login_csrf": token}
    async with httpx.AsyncClient(base_url=url, timeout=60, cookies=cookies) as c:
        n = 0
        while not stop.is_set():
            n += 1
            ip = f"10.{me}.{n % 250}.7"  # a new /24 each time: no limit applies
            r = await c.post(
                "/login",
                data={"email": f"nobody{me}.{n}@example.com", "password": "x" * 12, "csrf": token},
                headers={"X-Forwarded-For": ip},
            )
            seen[r.status_code] += 1


async def _pixels_during_flood(srv: Server, urls: list[str]) -> tuple[list[float], Counter[int]]:
    with httpx.Client(base_url=srv.url) as c:
        token = csrf_of(c.get("/login").text)
    stop, seen = asyncio.Event(), Counter[int]()
    flood = [asyncio.create_task(_flood(srv.url, token, stop, seen, i)) for i in range(FLOODERS)]
    took: list[float] = []
    try:
        async with httpx.AsyncClient(timeout=30) as c:
            deadline = time.monotonic() + 60
            while sum(seen.values()) < FLOODERS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # until the flood is at full strength
            for url in urls:  # each one the first hit of its message: a read of its facts
                started = time.monotonic()
                r = await c.get(url, headers={"X-Forwarded-For": "192.0.2.44"})
                took.append(time.monotonic() - started)
                assert r.headers["x-mailbeacon-recorded"] == "yes"
    finally:
        stop.set()
        await asyncio.gather(*flood, return_exceptions=True)
    return took, seen


def test_a_login_flood_does_not_slow_first_pixels(owner: Server) -> None:
    urls = [owner.message(recipient=f"r{i}@example.org")["open_url"] for i in range(9)]
    httpx.get(urls.pop(), headers={"X-Forwarded-For": "192.0.2.44"})  # warm: lazy first-use work
    took, seen = asyncio.run(_pixels_during_flood(owner, urls))
    assert seen[401] >= 5, seen  # passwords really were being checked meanwhile
    assert max(took) < 1.0, f"first pixels took {[round(t, 2) for t in took]} s during {seen}"
