"""Instrumenting through the public surface: the API, the CLI, a real redirect."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mailbeacon.instrument import pixel_img
from tests.helpers import Server, cli, rows

EMAILS = Path(__file__).parent / "data" / "emails"
HTML = (
    '<html><BODY><p>Hi,</p><a href="https://example.com/p?a=1&amp;b=2">Pricing</a>\n'
    "<a href='https://example.com/docs'>example.com/docs</a>\n"
    '<a href="mailto:me@example.com">mail me</a> <a href="https://example.com/unsubscribe">x</a>'
    "</BODY></html>"
)


def test_instrument_html_changes_only_links_and_adds_one_pixel(api: TestClient) -> None:
    r = api.post("/api/v1/instrument", json={"html": HTML, "recipient": "ana@example.org"})
    assert r.status_code == 201, r.text
    body = r.json()
    out, msg = body["html"], body["message"]
    assert out.count(msg["open_url"]) == 1 and out.index(msg["open_url"]) < out.index("</BODY>")
    assert [(lk["position"], lk["url"]) for lk in msg["links"]] == [
        (1, "https://example.com/p?a=1&b=2")
    ]
    # Only the one href changed; the visible-URL, mailto and unsubscribe links stay.
    assert "href='https://example.com/docs'" in out and "mailto:me@example.com" in out
    assert "https://example.com/unsubscribe" in out
    reverted = out.replace(msg["links"][0]["tracked_url"], "https://example.com/p?a=1&amp;b=2")
    # The instrumenter's pixel is shaped for where it goes (instrument/pixel.py).
    assert reverted.replace(pixel_img(msg["open_url"]), "") == HTML


def test_instrumented_link_redirects_to_the_decoded_url(api: TestClient) -> None:
    body = api.post(
        "/api/v1/instrument", json={"html": HTML, "recipient": "a@b.org", "clicks": "all"}
    ).json()
    tracked = body["message"]["links"][0]["tracked_url"]
    r = api.get(tracked.replace("https://t.example.com", ""), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://example.com/p?a=1&b=2"
    # "all" tracks the visible-URL link too, but never mailto.
    assert len(body["message"]["links"]) == 3 and "mailto:me@example.com" in body["html"]


def test_instrument_modes_and_honeypot(api: TestClient) -> None:
    off = api.post(
        "/api/v1/instrument",
        json={"html": HTML, "recipient": "a@b.org", "clicks": "off", "pixel": "top"},
    ).json()
    assert off["message"]["links"] == []
    assert off["html"].index(off["message"]["open_url"]) < off["html"].index("<p>Hi")
    hp = api.post(
        "/api/v1/instrument", json={"html": HTML, "recipient": "a@b.org", "honeypot": True}
    ).json()
    assert hp["message"]["honeypot_position"] == 0
    trap = [lk for lk in hp["message"]["links"] if lk["position"] == 0]
    assert trap and trap[0]["tracked_url"] in hp["html"] and 'aria-hidden="true"' in hp["html"]


def test_instrument_eml_keeps_headers_and_encodings(api: TestClient) -> None:
    raw = (EMAILS / "alternative-qp-latin1.eml").read_bytes()
    r = api.post("/api/v1/instrument", json={"eml": raw.decode("latin-1"), "recipient": "a@b.org"})
    assert r.status_code == 201, r.text
    out = r.json()["eml"]
    head_in = raw.decode("latin-1").split("\n\n", 1)[0]
    assert out.startswith(head_in)
    parsed = email.message_from_string(out, policy=email.policy.default)
    html_parts = [p for p in parsed.walk() if p.get_content_type() == "text/html"]
    assert html_parts and html_parts[0]["Content-Transfer-Encoding"].lower() == "quoted-printable"
    assert r.json()["message"]["open_url"] in html_parts[0].get_content()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"recipient": "a@b.org"}, "exactly one"),
        ({"html": "x", "eml": "y", "recipient": "a@b.org"}, "exactly one"),
        ({"html": "x", "recipient": "a@b.org", "clicks": "some"}, "clicks"),
        ({"html": "x", "recipient": "nobody"}, "email address"),
    ],
)
def test_instrument_rejects_bad_requests_clearly(api: TestClient, body: dict, needle: str) -> None:  # type: ignore[type-arg]
    r = api.post("/api/v1/instrument", json=body)
    assert r.status_code == 422 and needle in r.json()["message"], r.text


def test_lint_api_lists_risks(api: TestClient) -> None:
    html = '<a href="https://bit.ly/x">https://example.com/</a>'
    found = api.post("/api/v1/lint", json={"html": html}).json()
    codes = {f["code"] for f in found}
    assert {"url-shortener", "domain-mismatch"} <= codes
    assert all(f["line"] == 1 for f in found)


def test_cli_instrument_single_batch_and_lint(server: Server, tmp_path: Path) -> None:
    template = tmp_path / "t.html"
    template.write_text(
        "<html><body><p>Hi {{ name }}</p>"
        '<a href="https://example.com/offer?c={{ code }}">Offer</a></body></html>'
    )
    out = tmp_path / "one.html"
    res = cli(
        "instrument", str(template), "--to", "solo@example.org", "--out", str(out), db=server.db
    )
    assert "0 links tracked" in res.stderr and "placeholders" in res.stderr
    plain = tmp_path / "plain.html"
    plain.write_text('<p>Hi</p><a href="https://example.com/offer">Offer</a>')
    res = cli("instrument", str(plain), "--to", "solo@example.org", db=server.db)
    assert "1 links tracked" in res.stderr and server.url + "/c/" in res.stdout
    assert server.url + "/o/" in out.read_text()

    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,code\n" + "".join(f"p{i}@example.org,Person <{i}>,C{i}\n" for i in range(50))
    )
    outdir = tmp_path / "out"
    res = cli(
        "instrument",
        str(template),
        "--recipients",
        str(people),
        "--campaign",
        "launch",
        "--out",
        str(outdir),
        db=server.db,
    )
    files = sorted(outdir.iterdir())
    assert len(files) == 50 and "50 emails written" in res.stdout
    first = files[0].read_text()
    assert "Hi Person &lt;0&gt;" in first  # values are HTML-escaped
    # Each recipient's link is personalised and tracked: following it lands on their URL.
    tracked = re.search(r'href="([^"]+/c/[^"]+)"', first).group(1)  # type: ignore[union-attr]
    assert httpx.get(tracked).headers["location"] == "https://example.com/offer?c=C0"
    [(n,)] = rows(
        server.db,
        "SELECT count(*) FROM messages m JOIN campaigns c ON "
        "c.id = m.campaign_id WHERE c.name = 'launch'",
    )
    assert n == 50

    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\nx@example.org,X\n")
    res = cli(
        "instrument",
        str(template),
        "--recipients",
        str(bad),
        "--out",
        str(outdir / "b"),
        db=server.db,
        check=False,
    )
    assert res.returncode == 2 and "{{code}}" in res.stderr

    risky = tmp_path / "risky.html"
    risky.write_text('<p>hi</p>\n<a href="https://tinyurl.com/abc">https://example.com</a>\n')
    res = cli("lint", str(risky), db=server.db, check=False)
    assert res.returncode == 1 and "risky.html:2: url-shortener" in res.stdout


LATIN1_EML = (
    b"From: Ana <ana@example.com>\r\nTo: M\xfcller <m@example.org>\r\nSubject: Gr\xfc\xdfe\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    b'<html><body><p>Gr\xfc\xdfe</p><a href="https://example.com/p">Preise</a></body></html>\r\n'
)


def _check_latin1_round_trip(body: dict) -> None:  # type: ignore[type-arg]
    out = base64.b64decode(body["eml_base64"])
    head = LATIN1_EML.split(b"\r\n\r\n", 1)[0]
    assert out.startswith(head + b"\r\n\r\n")  # M\xfcller stays latin-1, CRLF stays
    assert b"<p>Gr\xfc\xdfe</p>" in out and b"\n" not in out.replace(b"\r\n", b"")
    assert body["report"]["pixel_added"] and body["report"]["links_tracked"] == 1
    assert "M\ufffdller" in body["eml"]  # the text field cannot hold latin-1: said so in the docs


def test_instrument_accepts_and_returns_a_message_as_bytes(api: TestClient) -> None:
    r = api.post(
        "/api/v1/instrument",
        json={"eml_base64": base64.b64encode(LATIN1_EML).decode(), "recipient": "m@example.org"},
    )
    assert r.status_code == 201, r.text
    _check_latin1_round_trip(r.json())
    # The same as a raw message/rfc822 body, the other fields in the query string.
    r = api.post(
        "/api/v1/instrument",
        params={"recipient": "m@example.org", "clicks": "all"},
        content=LATIN1_EML,
        headers={"Content-Type": "message/rfc822"},
    )
    assert r.status_code == 201, r.text
    _check_latin1_round_trip(r.json())
    r = api.post(
        "/api/v1/instrument", content=LATIN1_EML, headers={"Content-Type": "message/rfc822"}
    )
    assert r.status_code == 422 and "recipient" in r.json()["message"]
    r = api.post("/api/v1/instrument", json={"eml_base64": "not base64!", "recipient": "a@b.org"})
    assert r.status_code == 422 and "eml_base64" in r.json()["message"]


def test_instrument_reports_what_it_did(api: TestClient) -> None:
    html = '<body><a href="https://x.example/?id={{id}}">A</a><a href="https://x.example/b">B</a></body>'
    body = api.post("/api/v1/instrument", json={"html": html, "recipient": "a@b.org"}).json()
    assert body["report"] == {
        "pixel_added": True,
        "pixel": "before </body>",
        "links_tracked": 1,
        "left_alone": [
            {"url": "https://x.example/?id={{id}}", "reason": "placeholder", "detail": "{{id}}"}
        ],
        "notes": [],
    }
    text_only = b"From: a@b.test\nSubject: s\n\nplain text\n"
    r = api.post(
        "/api/v1/instrument",
        json={"eml_base64": base64.b64encode(text_only).decode(), "recipient": "a@b.org"},
    )
    report = r.json()["report"]
    assert not report["pixel_added"] and "no HTML part" in report["pixel"]
