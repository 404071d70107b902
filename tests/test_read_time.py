"""Read time (docs/read-time.md): a direct reader's pixel streams while the
message is open; how long it stayed is recorded on the open.

The browser tests use Debian's Chromium through Playwright against a real
`serve` that trusts 127.0.0.0/8 as its proxy, so the page's image fetch can
carry a reader's address (X-Forwarded-For) and is not the sender's own.
Staying open N seconds is the behaviour under test, so those tests wait
until the server has sent N frames (mailbeacon_read_frames_total), then
close the page and compare the recorded duration with the time they saw.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mailbeacon import readtime
from mailbeacon.readtime import Thresholds
from tests.helpers import Server, cli, start_server, wait_for
from tests.traffic import CHROME, DATA, GMAIL_PROXY, THUNDERBIRD, ago

CHROMIUM = "/usr/bin/chromium"
READER_IP = "198.51.100.20"
# What Gecko (Thunderbird) sends for an <img>: rendering engines name image types.
GECKO_IMG = "image/avif,image/webp,*/*"
PASSWORD = "a long passphrase"
browser_only = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")


# -- the pure part ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (None, "unknown"),
        (0.0, "glanced"),
        (1.99, "glanced"),
        (2.0, "skimmed"),
        (5.0, "skimmed"),
        (8.0, "skimmed"),
        (8.01, "read"),
        (30.0, "read"),
    ],
)
def test_buckets_follow_the_published_edges(seconds: float | None, bucket: str) -> None:
    assert Thresholds().bucket(seconds) == bucket


@pytest.mark.parametrize(
    ("kind", "label", "seconds", "bucket"),
    [
        ("open", "human_direct", 5.0, "skimmed"),
        ("open", "human_direct", None, "unknown"),
        ("open", "human_via_proxy", None, "unknown"),
        ("open", "machine_prefetch", None, "unknown"),
        ("open", "security_scanner", 12.0, "unknown"),  # relabelled since: not a read
        ("click", "human", None, None),
        ("reply", "human", None, None),
    ],
)
def test_read_bucket_of_an_event(
    kind: str, label: str, seconds: float | None, bucket: str | None
) -> None:
    assert readtime.bucket_of(kind, label, seconds) == bucket


@pytest.mark.parametrize("frames", [1, 2, 30])
def test_the_stream_is_a_complete_transparent_image_after_any_frame(frames: int) -> None:
    for body in (
        readtime.HEAD + readtime.FRAME * frames,
        readtime.HEAD + readtime.FRAME * frames + readtime.TRAILER,
    ):
        img = Image.open(io.BytesIO(body))
        assert img.size == (1, 1) and img.info["transparency"] == 0
        assert getattr(img, "n_frames", 1) == frames
        assert img.convert("RGBA").getpixel((0, 0))[3] == 0  # fully transparent


# -- a real server -------------------------------------------------------------------


def serve(db_url: str, tmp_path: Path, **settings: Any) -> Server:
    settings.setdefault("read_time", "true")  # tests/conftest.py turns it off elsewhere
    env = {f"MAILBEACON_{k.upper()}": str(v) for k, v in settings.items()}
    return start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"], env=env)


def metric(srv: Server, name: str) -> float:
    text = httpx.get(f"{srv.url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def measured(srv: Server, message_id: int) -> dict[str, Any]:
    """The message's open, once its read time is in."""

    def done() -> dict[str, Any] | None:
        [ev] = srv.events(message_id)
        return ev if ev["read_seconds"] is not None else None

    try:
        return dict(wait_for(done))
    except AssertionError:
        raise AssertionError(f"no read time: {srv.events(message_id)}\n{srv.output()}") from None


def view_seconds(srv: Server, message_id: int) -> float:
    return float(srv.events(message_id)[0]["read_seconds"])


@pytest.fixture
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"],
        )  # fmt: skip
        context = browser.new_context(
            user_agent=CHROME, extra_http_headers={"X-Forwarded-For": READER_IP}
        )
        try:
            yield context
        finally:
            context.close()
            browser.close()


def open_mail(srv: Server, context: Any, pixel: str, frames: int) -> tuple[Any, float]:
    """A page showing an email with ``pixel``, once the server has sent
    ``frames`` frames of it; (the page, monotonic time its stream began)."""
    before = metric(srv, "mailbeacon_read_frames_total")
    page = context.new_page()
    # "commit": a streaming image holds the page's load event for as long as it streams.
    page.set_content(f'<p>Hello</p><img id="px" src="{pixel}" width="1" height="1">',
                     wait_until="commit")  # fmt: skip
    wait_for(lambda: metric(srv, "mailbeacon_read_frames_total") >= before + 1, every=0.02)
    began = time.monotonic()
    wait_for(lambda: metric(srv, "mailbeacon_read_frames_total") >= before + frames, every=0.02)
    return page, began


@pytest.mark.process
@browser_only
def test_a_browser_that_reads_five_seconds_is_skimmed_and_a_glance_is_glanced(
    db_url: str, tmp_path: Path, chromium: Any
) -> None:
    srv = serve(db_url, tmp_path)
    try:
        cid = srv.api("POST", "/api/v1/campaigns", json={"name": "launch"}).json()["id"]
        skim = srv.message(sent_at=ago(600), campaign_id=cid)
        page, began = open_mail(srv, chromium, skim["open_url"], frames=6)  # 5 s after the first
        page.close()
        stayed = time.monotonic() - began
        ev = measured(srv, skim["id"])
        assert ev["label"] == "human_direct", ev
        assert abs(ev["read_seconds"] - stayed) <= 1.0 and 4.0 <= ev["read_seconds"] <= 6.0, (
            ev,
            stayed,
        )
        assert ev["read_bucket"] == "skimmed"

        glance = srv.message(sent_at=ago(600), campaign_id=cid)
        page, began = open_mail(srv, chromium, glance["open_url"], frames=1)
        time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))  # the glance itself: 0.5 s
        page.close()
        stayed = time.monotonic() - began
        ev = measured(srv, glance["id"])
        assert abs(ev["read_seconds"] - stayed) <= 1.0 and ev["read_seconds"] < 2.0, (ev, stayed)
        assert ev["read_bucket"] == "glanced"
        # The API, the report and their pages show it beside human opens.
        view = srv.api("GET", f"/api/v1/messages/{skim['id']}").json()
        assert view["read_time"]["skimmed"] == 1 and view["read_time"]["measured_share"] == 1.0
        opens = srv.api("GET", f"/api/v1/campaigns/{cid}/report").json()["opens"]
        assert (opens["read_unique"], opens["read_rate"]) == (0, 0.0)
        assert opens["read_time"] == {"glanced": 1, "skimmed": 1, "read": 0, "measured": 2,
                                      "unknown": 0, "measured_share": 1.0}  # fmt: skip
        cli("users", "create", "--email", "me@example.com", "--password", PASSWORD, db=db_url)
        page = chromium.new_page()
        page.goto(f"{srv.url}/login")
        page.get_by_label("Email").fill("me@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(srv.url + "/")
        page.goto(f"{srv.url}/messages/{skim['id']}")
        line = page.locator("[data-read-time]").inner_text()
        assert "1 skimmed" in line and "100%" in line, line
        shown = f"skimmed, {view_seconds(srv, skim['id']):.1f} s"
        assert shown in page.locator(".timeline").inner_text()
        page.goto(f"{srv.url}/campaigns/{cid}")
        fig = page.locator("[data-read-time]").inner_text()
        assert "1 skimmed, 1 glanced" in fig, fig
    finally:
        srv.stop()


@pytest.mark.process
@browser_only
def test_left_open_past_the_cap_is_read_with_the_cap_as_duration(
    db_url: str, tmp_path: Path, chromium: Any
) -> None:
    # A 3 s cap, with edges scaled to it; header_timeout 1 s: the server's
    # request time limit must not cut a stream (it only times requests arriving).
    srv = serve(
        db_url,
        tmp_path,
        read_time_cap=3,
        read_glanced_below=0.5,
        read_read_above=2.5,
        header_timeout=1,
    )
    try:
        msg = srv.message(sent_at=ago(600))
        page, _ = open_mail(srv, chromium, msg["open_url"], frames=1)
        ev = measured(srv, msg["id"])  # while the page is still open
        assert (ev["read_seconds"], ev["read_bucket"]) == (3.0, "read"), ev
        # The image the reader's client ended with is a whole, valid one.
        page.wait_for_function("() => document.getElementById('px').complete", timeout=10_000)
        size = page.evaluate(
            "() => { const i = document.getElementById('px');"
            " return [i.complete, i.naturalWidth, i.naturalHeight]; }"
        )
        assert size == [True, 1, 1]
        page.close()
    finally:
        srv.stop()


@pytest.mark.process
def test_proxies_prefetchers_and_head_get_the_plain_gif_at_once(
    db_url: str, tmp_path: Path
) -> None:
    cli("networks", "load", "apple_egress", str(DATA / "egress-ip-ranges.csv"), db=db_url)
    srv = serve(db_url, tmp_path)
    try:
        msg = srv.message(sent_at=ago(3600))
        cases = [
            ("GET", GMAIL_PROXY, "66.249.84.222"),  # Gmail's image proxy: human_via_proxy
            ("GET", "Mozilla/5.0", "172.224.226.5"),  # Apple Mail Privacy Protection
            ("HEAD", THUNDERBIRD, READER_IP),  # a direct client, but HEAD
            # A script with a mail client's name that does not ask for an image
            # (an HTTP library's Accept: */*): it reads the whole body, so it
            # must not wait out the cap.
            ("GET*", THUNDERBIRD, READER_IP),
        ]
        for method, ua, ip in cases:
            t0 = time.monotonic()
            accept = "*/*" if method == "GET*" else GECKO_IMG
            method = method.rstrip("*")
            r = httpx.request(method, msg["open_url"], headers={"User-Agent": ua,
                              "X-Forwarded-For": ip, "Accept": accept})  # fmt: skip
            assert time.monotonic() - t0 < 2.0
            assert r.headers["content-length"] == "43"
            assert r.headers["x-mailbeacon-recorded"] == "yes"
            assert r.content == (b"" if method == "HEAD" else _plain_gif())
        # A direct client speaking HTTP/1.0 (no chunked answers): plain GIF too.
        import socket

        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            path = msg["open_url"].removeprefix(srv.url)
            sock.sendall(f"GET {path} HTTP/1.0\r\nUser-Agent: {THUNDERBIRD}\r\n"
                         f"X-Forwarded-For: {READER_IP}\r\n"
                         f"Accept: {GECKO_IMG}\r\n\r\n".encode())  # fmt: skip
            raw = b""
            while chunk := sock.recv(4096):
                raw += chunk
        assert b"content-length: 43" in raw.lower() and raw.endswith(_plain_gif())
        events = srv.events(msg["id"])
        labels = [e["label"] for e in events]
        assert labels[:2] == ["human_via_proxy", "machine_prefetch"], labels
        assert {(e["read_seconds"], e["read_bucket"]) for e in events} == {(None, "unknown")}
    finally:
        srv.stop()


def _plain_gif() -> bytes:
    from mailbeacon.hits.track import GIF

    return GIF


@pytest.mark.process
def test_streams_have_their_own_budget_and_never_take_ordinary_slots(
    sqlite_url: str, tmp_path: Path
) -> None:
    """6 streams held on a server whose ordinary cap is 4 connections: every
    ordinary pixel is still answered at once and no stream is cut; past the
    stream budget (6), a direct reader gets the plain GIF, unmeasured."""
    srv = serve(sqlite_url, tmp_path, max_connections=4, read_time_streams=6)
    held: list[Any] = []
    clients: list[httpx.Client] = []
    try:
        msgs = [srv.message(sent_at=ago(600)) for _ in range(8)]
        reader = {"User-Agent": THUNDERBIRD, "X-Forwarded-For": READER_IP, "Accept": GECKO_IMG}
        for m in msgs[:6]:
            c = httpx.Client(timeout=30)
            clients.append(c)
            resp = c.send(c.build_request("GET", m["open_url"], headers=reader), stream=True)
            assert resp.headers.get("transfer-encoding") == "chunked"
            held.append(resp)
        wait_for(lambda: metric(srv, "mailbeacon_read_streams") == 6)
        # Budget spent: the seventh direct reader is answered plainly.
        r = httpx.get(msgs[6]["open_url"], headers=reader)
        assert r.headers["content-length"] == "43" and r.headers["x-mailbeacon-recorded"] == "yes"
        # Ordinary hits (a proxy's) beside them: never refused nor kept waiting.
        for _ in range(20):
            t0 = time.monotonic()
            r = httpx.get(msgs[7]["open_url"], headers={"User-Agent": GMAIL_PROXY,
                          "X-Forwarded-For": "66.249.84.222"})  # fmt: skip
            assert r.status_code == 200 and time.monotonic() - t0 < 1.0
        assert metric(srv, "mailbeacon_read_streams") == 6  # none evicted
        assert metric(srv, 'mailbeacon_http_closed_total{reason="over_capacity"}') == 0
        for resp in held:
            resp.close()
        wait_for(lambda: metric(srv, "mailbeacon_read_streams") == 0)
        assert srv.events(msgs[6]["id"])[0]["read_bucket"] == "unknown"
        for m in msgs[:6]:  # each closed by its reader: measured, short of the cap
            assert measured(srv, m["id"])["read_seconds"] < 30
    finally:
        for c in clients:
            c.close()
        srv.stop()


@pytest.mark.process
def test_read_time_off_serves_the_plain_gif(sqlite_url: str, tmp_path: Path) -> None:
    srv = serve(sqlite_url, tmp_path, read_time="false")
    try:
        msg = srv.message(sent_at=ago(600))
        r = httpx.get(msg["open_url"], headers={"User-Agent": THUNDERBIRD,
                      "X-Forwarded-For": READER_IP, "Accept": GECKO_IMG})  # fmt: skip
        assert r.content == _plain_gif()
        [ev] = srv.events(msg["id"])
        assert ev["label"] == "human_direct" and ev["read_bucket"] == "unknown"
    finally:
        srv.stop()


# -- the store ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::sqlalchemy.exc.SAWarning")
def test_migration_0011_adds_the_columns_the_code_declares(db_url: str) -> None:
    """From 0010 with an event already stored, to head: the event is kept,
    unmeasured, and the schema matches store/schema.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from mailbeacon.store import upgrade
    from mailbeacon.store.schema import metadata
    from tests.helpers import engine_at

    engine = engine_at(db_url, "0010_replies")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO events (message_id, kind, at, method, ip, ip_hash, user_agent,"
                    " headers, flags, label) VALUES (1, 'open', 1.0, 'GET', '', '', '', '{}',"
                    " '', 'human_direct')"
                )
            )
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT read_seconds FROM events")).all() == [(None,)]
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if "read_seconds" in repr(d) or "read_at" in repr(d)] == []
    finally:
        engine.dispose()


def test_the_writer_records_read_times_with_their_rollups(db_url: str) -> None:
    """Through the Recorder (the writer thread), on both stores: each measured
    direct open counts once in its bucket; a message counts once in the read
    rate however many reads it has; an open relabelled since, an erased
    message's and a second measure of one open are not counted."""
    import asyncio

    from sqlalchemy import text

    from mailbeacon.config import normalise_db_url
    from mailbeacon.hits.recorder import Recorder
    from mailbeacon.messages import create_message
    from mailbeacon.model import Event, Kind
    from mailbeacon.reports.campaign import campaign_report
    from mailbeacon.store import make_engine, upgrade
    from mailbeacon.tokens import Signer

    engine = make_engine(normalise_db_url(db_url))
    upgrade(engine)
    with engine.begin() as conn:
        cid = conn.execute(
            text("INSERT INTO campaigns (name, created_at) VALUES ('c', 0) RETURNING id")
        ).scalar_one()
        mids = [
            create_message(conn, Signer({1: b"k" * 32}), "http://x", recipient=f"r{i}@x.org",
                           campaign_id=cid, sent_at=1_000_000.0)["id"]
            for i in range(3)
        ]  # fmt: skip

    def open_(mid: int, label: str) -> Event:
        return Event(message_id=mid, kind=Kind.OPEN, at=1_000_100.0, method="GET",
                     ip="192.0.2.1", ip_stored="192.0.2.0/24", ip_hash="h", user_agent="ua",
                     label=label)  # fmt: skip

    # (message, label, seconds measured)
    table = [
        (0, "human_direct", 12.0),  # read
        (0, "human_direct", 30.0),  # read again: the message counts once
        (1, "human_direct", 5.0),  # skimmed
        (1, "human_direct", 0.4),  # glanced
        (2, "human_via_proxy", 9.0),  # not measurable: stored, never counted
        (1, "human_via_proxy", None),  # not measured
    ]

    async def run() -> list[Event]:
        rec = Recorder(engine, commit_timeout=30)
        rec.start()
        evs = [open_(mids[m], label) for m, label, _ in table]
        assert all(await asyncio.gather(*(rec.add(e) for e in evs)))
        for e, (_, _, sec) in zip(evs, table, strict=True):
            if sec is not None:
                assert e.id is not None
                rec.read_time(e.id, sec)
        assert evs[0].id is not None
        rec.read_time(evs[0].id, 3.0)  # a second measure of one open: ignored
        await asyncio.to_thread(rec.stop)
        return evs

    evs = asyncio.run(run())
    with engine.connect() as conn:
        got = dict(
            conn.execute(text("SELECT id, read_seconds FROM events")).all()  # type: ignore[arg-type]
        )
        report = campaign_report(conn, cid)
    engine.dispose()
    assert [got[e.id] for e in evs] == [12.0, 30.0, 5.0, 0.4, 9.0, None]
    opens = report["opens"]
    assert opens["read_time"] == {"glanced": 1, "skimmed": 1, "read": 2, "measured": 4,
                                  "unknown": 2, "measured_share": round(4 / 6, 4)}  # fmt: skip
    assert (opens["read_unique"], opens["read_rate"]) == (1, round(1 / 3, 4))
    leads = {w["message_id"]: w["why"] for w in report["warm_leads"]}
    assert leads == {mids[0]: "read", mids[1]: "opened_repeatedly"}, leads


@pytest.mark.process
def test_shutdown_ends_streams_at_once_and_leaves_them_unmeasured(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A stream does not hold the graceful shutdown for up to its cap: the
    server completes the image (GIF trailer) and exits; the duration was
    cut by the server, not the reader, so it stays unknown."""
    import signal

    srv = serve(sqlite_url, tmp_path, read_time_cap=600)
    msg = srv.message(sent_at=ago(600))
    with httpx.Client(timeout=30) as c:
        req = c.build_request("GET", msg["open_url"], headers={"User-Agent": THUNDERBIRD,
                              "X-Forwarded-For": READER_IP, "Accept": GECKO_IMG})  # fmt: skip
        resp = c.send(req, stream=True)
        wait_for(lambda: metric(srv, "mailbeacon_read_streams") == 1)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        body = resp.read()  # ends when the server ends the image
        assert body.endswith(readtime.TRAILER) and Image.open(io.BytesIO(body)).size == (1, 1)
    srv.proc.wait(30)
    assert time.monotonic() - t0 < 5.0  # not the 10 s graceful timeout, nor the cap
    from tests.helpers import rows

    assert rows(sqlite_url, "SELECT read_seconds FROM events") == [(None,)]
