"""``mailbeacon demo``: a campaign filled with realistic traffic, driven through
the real tracking endpoints, so every view and every label has something in it.

Hits are sent from 127.0.0.1 with X-Forwarded-For carrying the address a real
client would have; the server must trust 127.0.0.1 as its proxy
(``serve --trust-proxy 127.0.0.1/32``), which is how :func:`run_with_server`
starts its own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from mailbeacon.messages import create_message, honeypot_destination
from mailbeacon.store import keys
from mailbeacon.store import messages as message_store

OUTLOOK = "Microsoft Office/16.0 (Microsoft Outlook 16.0.17328; Pro; Windows NT 10.0)"
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
LINKS = [
    "https://example.com/spring-offer",
    "https://example.com/pricing",
    "https://example.com/book-a-call",
]


@dataclass
class Reader:
    recipient: str
    variant: str
    story: str  # what the demo shows with this one
    steps: list[tuple[str, str, str, Any]]  # (what, ip, user agent, link position or None)
    sent_ago: float | None = 7200.0
    honeypot: bool = False
    cookie: bool = False


def readers() -> list[Reader]:
    r = Reader
    return [
        r(
            "olivia@example.org",
            "A",
            "Outlook on Windows: opens, clicks the offer",
            [("open", "198.51.100.10", OUTLOOK, None), ("click", "198.51.100.10", CHROME, 1)],
        ),
        r(
            "amir@example.net",
            "B",
            "Apple Mail with Privacy Protection: a prefetch, not a read",
            [("open", "172.224.226.5", "Mozilla/5.0", None)],
        ),
        r(
            "sofia@example.com",
            "A",
            "Apple Mail without Privacy Protection: a real read",
            [
                ("open", "198.51.100.33", APPLE_MAIL, None),
                ("click", "198.51.100.33", SAFARI_IOS, 2),
            ],
        ),
        r(
            "liam@gmail.com",
            "B",
            "Gmail: the image proxy fetches when the reader opens",
            [("open", "66.249.84.222", GMAIL_PROXY, None), ("click", "203.0.113.40", CHROME, 3)],
        ),
        r(
            "noah@gmail.com",
            "A",
            "Gmail reader who only opens",
            [("open", "66.249.84.223", GMAIL_PROXY, None)],
        ),
        r(
            "emma@example.org",
            "B",
            "Thunderbird reader who comes back twice (a warm lead)",
            [
                ("open", "198.51.100.77", THUNDERBIRD, None),
                ("open", "198.51.100.77", THUNDERBIRD, None),
            ],
        ),
        r(
            "security@corp.example",
            "A",
            "A scanner (Microsoft Safe Links) clicking every link, even the hidden one, at once",
            [("click", "40.107.218.12", CHROME, p) for p in (1, 2, 3, 0)],
            sent_ago=1.0,
            honeypot=True,
        ),
        r(
            "ops@example.net",
            "B",
            "A bot: an HTTP library fetching the pixel, a HEAD on a link",
            [
                ("open", "203.0.113.90", "python-requests/2.31", None),
                ("head", "203.0.113.90", "python-requests/2.31", 1),
            ],
        ),
        r(
            "mia@example.com",
            "A",
            "Phone mail app: opens on an iPhone",
            [("open", "198.51.100.120", IPHONE_MAIL, None)],
        ),
        r(
            "you@example.com",
            "B",
            "You, checking your own sent mail (sender cookie)",
            [("open", "198.51.100.200", CHROME, None)],
            cookie=True,
        ),
        r(
            "draft@example.com",
            "A",
            "Still composing in Gmail: the compose window fetches the pixel through Google's proxy",
            [("open", "66.249.84.224", GMAIL_PROXY, None)],
            sent_ago=None,
        ),
        r("ben@example.org", "B", "Has not opened (yet)", []),
    ]


def drive(engine: Engine, url: str, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Create the demo campaign and send its traffic to the server at ``url``."""
    url = url.rstrip("/")
    signer = keys.ensure_signer(engine)
    name = f"Demo: spring newsletter {time.strftime('%Y-%m-%d %H:%M:%S')}"
    now = time.time()
    made: list[tuple[Reader, dict[str, Any]]] = []
    with engine.begin() as conn:
        cid = int(message_store.create_campaign(conn, name)["id"])
        for rd in readers():
            made.append(
                (
                    rd,
                    create_message(
                        conn,
                        signer,
                        url,
                        recipient=rd.recipient,
                        subject="Spring offer: 20% off",
                        campaign_id=cid,
                        variant=rd.variant,
                        sent_at=None if rd.sent_ago is None else now - rd.sent_ago,
                        links=LINKS,
                        honeypot_url=honeypot_destination(url) if rd.honeypot else None,
                    ),
                )
            )
    cookie = f"mb_sender={signer.sender_cookie(int(time.time()))}"
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        for rd, msg in made:
            say(f"  {rd.recipient:24} {rd.story}")
            links = {link["position"]: link["tracked_url"] for link in msg["links"]}
            for what, ip, ua, pos in rd.steps:
                headers = {"User-Agent": ua, "X-Forwarded-For": ip}
                if rd.cookie:
                    headers["Cookie"] = cookie
                target = msg["open_url"] if what == "open" else links[pos]
                r = client.request("HEAD" if what == "head" else "GET", target, headers=headers)
                if r.headers.get("x-mailbeacon-recorded") != "yes":
                    raise RuntimeError(f"the server did not record a hit on {target}: {r.headers}")
                # People take seconds between actions; scanners do not. Human
                # steps are spaced past the 1 s burst window, scanner ones not.
                time.sleep(0.05 if rd.honeypot else 1.1 if what == "click" else 0.1)
    time.sleep(1.0)  # late evidence (honeypot, bursts) relabels right after each commit
    return {"campaign_id": cid, "name": name, "messages": len(made)}


def run_with_server(
    db_url: str, engine: Engine, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Start ``serve`` on a port of its choosing (trusting 127.0.0.1), drive traffic, stop it.

    The server binds port 0 and prints the port it got: picking a free port
    here and passing it would race with anything else starting meanwhile.
    Its output goes to a file, never an unread pipe (a full pipe would stall it).
    """
    cmd = [
        sys.executable,
        "-m",
        "mailbeacon",
        "--db",
        db_url,
        "serve",
        "--port",
        "0",
        "--trust-proxy",
        "127.0.0.1/32",
    ]
    with tempfile.TemporaryDirectory(prefix="mailbeacon-demo-") as tmp:
        log = Path(tmp) / "serve.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            base = _wait_ready(proc, log)
            return drive(engine, base, say)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> str:
    """The server's URL once it answers /healthz; an error naming the cause otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if proc.poll() is not None:
            raise RuntimeError("the demo server exited: " + text[-2000:])
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        if found:
            try:
                if httpx.get(found.group(1) + "/healthz", timeout=1).status_code == 200:
                    return found.group(1)
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"the demo server did not start within {timeout:.0f} s")
