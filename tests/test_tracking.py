"""The tracking endpoints, through the app in process (tests/inprocess.py);
through a real `mailbeacon serve` on a real socket for what only it shows:
the server's size limits, garbage on the socket, and the process's metrics
counters (in process they add up over a worker's tests)."""

from __future__ import annotations

import socket

import pytest

from mailbeacon.hits.track import GIF
from tests.helpers import Running, Server, rows
from tests.inprocess import InProcess, in_process
from tests.traffic import request

NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0"


def test_pixel_answers_gif_and_records_the_hit(server_app: InProcess) -> None:
    msg = server_app.message(links=["https://example.com/a"])
    r = request("GET", msg["open_url"], headers={"User-Agent": "Thunderbird/115.0"})
    assert r.status_code == 200
    assert r.content == GIF and len(r.content) == 43
    assert r.headers["content-type"] == "image/gif"
    assert r.headers["cache-control"] == NO_CACHE
    assert r.headers["pragma"] == "no-cache" and r.headers["expires"] == "0"
    assert r.headers["x-mailbeacon-recorded"] == "yes"
    [event] = server_app.events(msg["id"])
    assert event["kind"] == "open" and event["method"] == "GET"
    assert event["user_agent"] == "Thunderbird/115.0"
    assert event["ip"] == "127.0.0.0/24"  # truncated by default


def test_pixel_html_is_an_invisible_image_clients_load(server_app: InProcess) -> None:
    msg = server_app.message()
    html = msg["pixel_html"]
    assert html.startswith("<img ") and msg["open_url"] in html
    assert 'width="1"' in html and 'height="1"' in html and 'alt=""' in html
    assert "display:none" not in html.replace(" ", "")


def test_click_redirects_to_signed_destination(server_app: InProcess) -> None:
    url = "https://example.com/pricing?utm=1&x=é"
    msg = server_app.message(links=[url, "https://example.com/b"])
    link = msg["links"][0]
    assert (link["url"], link["position"]) == (url, 1)
    r = request("GET", link["tracked_url"], follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://example.com/pricing?utm=1&x=%C3%A9"
    assert r.headers["x-mailbeacon-recorded"] == "yes"
    [event] = server_app.events(msg["id"])
    assert (event["kind"], event["link_position"], event["url"]) == ("click", 1, url)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3],  # truncated
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # one char changed
        lambda t: t + "==",  # re-encoded with padding
        lambda t: t.swapcase(),
        lambda t: "not-a-token",
    ],
    ids=["truncated", "changed", "padded", "swapcase", "garbage"],
)
def test_bad_pixel_tokens_still_get_the_gif_but_record_nothing(server: Server, mangle) -> None:  # type: ignore[no-untyped-def]
    msg = server.message()
    token = msg["open_url"].rsplit("/", 1)[1][: -len(".gif")]
    r = request("GET", f"{server.url}/o/{mangle(token)}.gif")
    assert r.status_code == 200 and r.content == GIF
    assert r.headers["x-mailbeacon-recorded"] == "no; reason=bad_token"
    assert server.events(msg["id"]) == []
    metrics = request("GET", f"{server.url}/metrics").text
    assert 'mailbeacon_rejected_tokens_total{kind="open"} 1.0' in metrics


def test_forged_or_swapped_click_never_redirects(server_app: InProcess) -> None:
    msg = server_app.message(links=["https://example.com/a"])
    tracked = msg["links"][0]["tracked_url"]
    open_token = msg["open_url"].rsplit("/", 1)[1][: -len(".gif")]
    for bad in (
        tracked[:-4],
        tracked + "xyz",
        f"{server_app.url}/c/{open_token}",
        f"{server_app.url}/c/",
        f"{server_app.url}/c/%00%ff",
    ):
        r = request("GET", bad, follow_redirects=False)
        assert r.status_code == 404, bad
        assert r.headers["x-mailbeacon-recorded"] == "no; reason=bad_token"
        assert "location" not in r.headers
        assert "not valid" in r.text
    assert server_app.events(msg["id"]) == []


def test_scanner_mutated_token_is_recorded_with_flag(server_app: InProcess) -> None:
    msg = server_app.message(links=["https://example.com/a"])
    r = request("GET", msg["links"][0]["tracked_url"] + "%27", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://example.com/a"
    [event] = server_app.events(msg["id"])
    assert event["flags"] == ["mutated"]


def test_head_is_answered_and_recorded(server_app: InProcess) -> None:
    msg = server_app.message(links=["https://example.com/a"])
    r = request("HEAD", msg["open_url"])
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "43"
    r = request("HEAD", msg["links"][0]["tracked_url"], follow_redirects=False)
    assert r.status_code == 302
    assert [e["method"] for e in server_app.events(msg["id"])] == ["HEAD", "HEAD"]


def test_bounds_methods_bodies_and_sizes(server: Server) -> None:
    msg = server.message(links=["https://example.com/a"])
    r = request("POST", msg["open_url"])
    assert r.status_code == 405 and r.headers["x-mailbeacon-recorded"] == "no; reason=bad_request"
    assert request("GET", msg["open_url"], content=b"x" * 10).status_code == 413
    long_ua = "Mozilla/5.0 " + "x" * 2000
    assert request("GET", msg["open_url"], headers={"User-Agent": long_ua}).status_code == 200
    r = request("GET", msg["open_url"], headers={f"X-Pad-{i}": "y" * 1000 for i in range(20)})
    assert r.status_code == 431
    r = request("GET", f"{server.url}/o/{'A' * 9000}.gif")
    assert r.status_code == 414
    [event] = server.events(msg["id"])
    assert len(event["user_agent"]) == 512 and event["user_agent"] == long_ua[:512]


def test_raw_garbage_on_the_socket_does_not_kill_the_server(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100 + b"\r\n\r\n")
        s.recv(100)
    msg = server.message()
    assert request("GET", msg["open_url"]).headers["x-mailbeacon-recorded"] == "yes"


def test_forwarded_for_is_ignored_without_trusted_proxy(server_app: InProcess) -> None:
    msg = server_app.message()
    request("GET", msg["open_url"], headers={"X-Forwarded-For": "203.0.113.9"})
    [event] = server_app.events(msg["id"])
    assert event["ip"] == "127.0.0.0/24"


def test_trusted_proxy_and_full_ip_storage(db_url: str) -> None:
    flags = {"trust_proxy": ("127.0.0.0/8", "10.0.0.0/8"), "store_ip": "full"}
    with in_process(db_url, **flags) as srv:
        msg = srv.message()
        # Right-most untrusted address wins; the spoofed left part is ignored.
        xff = "6.6.6.6, 198.51.100.7, 10.1.2.3"
        request("GET", msg["open_url"], headers={"X-Forwarded-For": xff})
        [event] = srv.events(msg["id"])
        assert event["ip"] == "198.51.100.7"
        stored = rows(db_url, "SELECT ip, ip_hash FROM events")
        assert stored[0][0] == "198.51.100.7" and len(stored[0][1]) == 32


def test_truncated_ip_is_stored_with_a_keyed_hash_not_the_address(server_app: InProcess) -> None:
    msg = server_app.message()
    request("GET", msg["open_url"])
    [(ip, ip_hash)] = rows(server_app.db, "SELECT ip, ip_hash FROM events")
    assert ip == "127.0.0.0/24"
    assert "127.0.0.1" not in ip_hash and len(ip_hash) == 32


def test_metrics_expose_hits_batches_and_commit_latency(server: Server) -> None:
    msg = server.message()
    for _ in range(3):
        request("GET", msg["open_url"])
    text = request("GET", f"{server.url}/metrics").text
    assert 'mailbeacon_hits_total{kind="open"} 3.0' in text
    assert "mailbeacon_batch_size_count" in text
    assert "mailbeacon_commit_seconds_bucket" in text
    assert 'mailbeacon_unrecorded_hits_total{reason="queue_full"} 0.0' in text


def _healthy(srv: Running) -> bool:
    return request("GET", f"{srv.url}/healthz", timeout=5).status_code == 200


def test_a_client_name_longer_than_its_column_is_cut_and_recording_goes_on(
    server_app: InProcess,
) -> None:
    # A CFNetwork user agent names the app before the first "/": here 100
    # characters, for a 64-character column. On PostgreSQL the batch used to
    # fail, be retried with the bad row forever, and stop all recording.
    msg = server_app.message()
    r = request(
        "GET", msg["open_url"], headers={"User-Agent": "x" * 100 + "/2 CFNetwork/808 Darwin/16"}
    )
    assert r.status_code == 200 and r.headers["x-mailbeacon-recorded"] == "yes"
    r = request("GET", msg["open_url"], headers={"User-Agent": "Thunderbird/115.0"})
    assert r.headers["x-mailbeacon-recorded"] == "yes"
    assert _healthy(server_app)
    first, second = server_app.events(msg["id"])
    assert first["client"] == "x" * 64 and first["os"] == "iOS"
    assert second["user_agent"] == "Thunderbird/115.0"


def test_a_long_ipv6_zone_from_a_trusted_proxy_fits_the_ip_column(db_url: str) -> None:
    with in_process(db_url, trust_proxy=("127.0.0.0/8",), store_ip="full") as srv:
        msg = srv.message()
        zoned = "fe80::1%" + "z" * 200  # parses as an address: the zone id is free text
        r = request("GET", msg["open_url"], headers={"X-Forwarded-For": zoned})
        assert r.headers["x-mailbeacon-recorded"] == "yes"
        assert request("GET", msg["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
        assert _healthy(srv)
        stored = [ip for (ip,) in rows(db_url, "SELECT ip FROM events ORDER BY id")]
        assert stored == [zoned[:64], "127.0.0.1"]


def _answers(sock: socket.socket, count: int) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Read ``count`` answers to GETs (framed by content-length) off ``sock``."""
    data, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(out)} answers"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        size = int(headers[b"content-length"])
        while len(data) < size:
            chunk = sock.recv(65536)
            assert chunk, "closed inside a body"
            data += chunk
        out.append((status, headers, data[:size]))
        data = data[size:]
    return out


def test_pipelined_pixels_and_clicks_are_answered_whole_and_in_order(server: Server) -> None:
    """serve writes a pixel's or a click's answer in one piece (web/server.py,
    answer_whole): pipelined requests still get their answers in order, each
    with the headers an ASGI answer had (date included), a HEAD no body, and
    an HTTP/1.0 request its connection closed."""
    msg = server.message(links=["https://example.com/a?b=1"])
    pixel = msg["open_url"].removeprefix(server.url)
    click = msg["links"][0]["tracked_url"].removeprefix(server.url)
    get = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"
    burst = (get % pixel.encode()) + (get % click.encode()) + (get % b"/o/forged.gif")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(burst * 3)
        answers = _answers(s, 9)
    for i in range(0, 9, 3):
        (p_status, p_head, p_body), (c_status, c_head, c_body), (f_status, f_head, f_body) = (
            answers[i : i + 3]
        )
        assert p_status == b"HTTP/1.1 200 OK" and p_body == GIF
        assert p_head[b"content-type"] == b"image/gif" and b"date" in p_head
        assert p_head[b"cache-control"] == NO_CACHE.encode()
        assert p_head[b"x-mailbeacon-recorded"] == b"yes"
        assert b"connection" not in p_head
        assert c_status == b"HTTP/1.1 302 Found" and c_body == b""
        assert c_head[b"location"] == b"https://example.com/a?b=1"
        assert c_head[b"referrer-policy"] == b"no-referrer"
        assert f_status == b"HTTP/1.1 200 OK" and f_body == GIF
        assert f_head[b"x-mailbeacon-recorded"] == b"no; reason=bad_token"
    assert [e["kind"] for e in server.events(msg["id"])].count("open") == 3

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.0\r\nHost: t\r\n\r\n" % pixel.encode())
        data = b""
        while chunk := s.recv(65536):  # the server closes: the loop ends
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.lower() and body == GIF

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n" % pixel.encode() + get % pixel.encode())
        s.settimeout(10)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(GIF):
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    first, second = data.split(b"HTTP/1.1 200 OK", 2)[1:]
    assert first.endswith(b"\r\n\r\n") and b"content-length: 43" in first  # HEAD: no body
    assert second.endswith(GIF)
