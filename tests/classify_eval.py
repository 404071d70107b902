"""Replay the evaluation corpus (tests/data/classify_eval/) through a real
`mailbeacon serve` and score the labels it gives.

    python -m tests.classify_eval [--db URL] [--json] [--lists NAME=FILE ...]

Time. The server measures "time since send" with its own clock, and cases
span seconds to days. The server runs through tests/eval_clock.py, which
starts `mailbeacon serve` with a time-machine clock that this runner moves
forward over a socket: before each step the runner jumps the server's wall
clock to `sent_at + t`, so every hit arrives exactly as far after the send,
and exactly as far after the previous hit, as the case says (an open, then a
click two hours later), without the run waiting for it. Hits at the same
offset go out back to back (milliseconds apart). The monotonic clock is left
alone. Cases run one after another on one timeline, an hour of server time
apart, so no case sees another's hits as recent.

Addresses. The server trusts 127.0.0.0/8 as its proxy and every hit carries
`X-Forwarded-For: <the case's address>`. `res:N` in a case is "reader N of
this case": each case gets its own documentation addresses (198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32) so readers of different cases never share one.
The sender works from 192.0.2.10 (its API calls carry that address too), and
`sender` in a case means that address.

Networks. The server starts with its builtin lists plus Apple's relay egress
list (an excerpt of the published file, as `networks update` would fetch);
`--lists NAME=FILE` loads more, e.g. to evaluate a change that adds lists.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.classify_eval_corpus import DATA, SENDER_IP, Case, CorpusError, Hit, load
from tests.classify_eval_score import Outcome, Score, as_json, render, score
from tests.helpers import Server, cli, start_server

SENDER_EMAIL = "sender@example.com"
SENDER_PASSWORD = "correct horse battery staple"
CASE_GAP = 3600.0  # server seconds between one case's last hit and the next case


class ServerClock:
    """The server's wall clock (tests/eval_clock.py): real time plus an offset
    that only grows. `advance_to` returns once the server runs at the new time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        self._stream: Any = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.path))
        self._stream = sock.makefile("rw")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def now(self) -> float:
        return time.time() + self.offset

    def advance_to(self, when: float) -> None:
        if when <= self.now():
            return
        self._stream.write(f"{when:.6f}\n")
        self._stream.flush()
        server_now = float(self._stream.readline())
        self.offset = server_now - time.time()


@contextmanager
def eval_server(
    db: str, workdir: Path, lists: dict[str, Path]
) -> Iterator[tuple[Server, ServerClock]]:
    # Nothing of the run may land in the user's real data directory.
    # Read time off: a direct reader's pixel would stream until the cap, and
    # the replay reads each answer whole; labels are what this measures.
    env = {"MAILBEACON_DATA_DIR": str(workdir / "data"), "MAILBEACON_READ_TIME": "false"}
    cli("init", db=db, env=env)  # other commands refuse a database that is not there
    cli("networks", "load", "apple_egress", str(DATA / "apple-egress-excerpt.csv"), db=db, env=env)
    for name, path in lists.items():
        cli("networks", "load", name, str(path), db=db, env=env)
    cli("users", "create", "--email", SENDER_EMAIL, "--password", SENDER_PASSWORD, db=db, env=env)
    key = cli("keys", "create", "--name", "eval", db=db, env=env).stdout.split()[-1]
    sockdir = Path(tempfile.mkdtemp(prefix="mb-clock-"))  # AF_UNIX paths must stay short
    clock = ServerClock(sockdir / "clock")
    env |= {"MB_EVAL_CLOCK": str(clock.path), "PYTHONPATH": str(Path(__file__).parent.parent)}
    srv = start_server(
        db,
        workdir,
        extra_args=["--trust-proxy", "127.0.0.0/8"],
        key=key,
        env=env,
        module="tests.eval_clock",
    )
    try:
        clock.connect()
        yield srv, clock
    finally:
        clock.close()
        srv.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


class Replayer:
    def __init__(self, srv: Server, clock: ServerClock) -> None:
        self.srv, self.clock = srv, clock
        self.api = srv.client()
        self.api.headers["X-Forwarded-For"] = SENDER_IP  # the sender works from its office
        self.sent: dict[tuple[str, str], dict[str, Any]] = {}  # (case, msg) -> API message
        self.order: dict[tuple[str, str], list[Hit]] = {}
        self.unsupported: list[str] = []
        self._sender_cookie: str | None = None
        self.hits = httpx.Client(timeout=30)  # keep-alive: one connection for every hit

    def close(self) -> None:
        self.api.close()
        self.hits.close()

    def sender_cookie(self) -> str:
        """Sign in on the dashboard as the sender would, from the sender's address."""
        with httpx.Client(base_url=self.srv.url, headers={"X-Forwarded-For": SENDER_IP}) as c:
            page = c.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token, "no CSRF token on the sign-in page"
            c.post(
                "/login",
                data={"email": SENDER_EMAIL, "password": SENDER_PASSWORD, "csrf": token.group(1)},
            )
            cookie = c.cookies.get("mb_sender")
        assert cookie, "signing in set no mb_sender cookie"
        return cookie

    def create(self, case: Case, msg: dict[str, Any], campaign: int | None) -> None:
        body: dict[str, Any] = {
            "recipient": msg.get("recipient", f"{msg['key']}.{case.id}@example.org"),
            "subject": case.id,
            "links": [f"https://example.com/{case.id}/p{n}" for n in range(1, case.links + 1)],
            "honeypot": case.honeypot,
        }
        if msg.get("sent", 0) is not None:
            body["sent_at"] = self.clock.now()
        if campaign is not None:
            body["campaign_id"] = campaign
        r = self.api.post("/api/v1/messages", json=body)
        assert r.status_code == 201, r.text
        self.sent[(case.id, msg["key"])] = r.json()

    def target(self, m: dict[str, Any], hit: Hit) -> str:
        if hit.kind == "open":
            return str(m["open_url"])
        pos = m.get("honeypot_position") if hit.link == "honeypot" else hit.link
        for link in m["links"]:
            if link["position"] == pos:
                return str(link["tracked_url"])
        raise CorpusError(f"case {hit.case}#{hit.index}: no link {hit.link}")

    def send(self, hit: Hit) -> None:
        m = self.sent[(hit.case, hit.msg)]
        if hit.kind == "mark_sent":
            r = self.api.patch(f"/api/v1/messages/{m['id']}", json={"sent_at": "now"})
            if r.status_code >= 400:
                self.unsupported.append(f"{hit.case}#{hit.index}: PATCH sent_at ({r.status_code})")
            return
        headers = {**hit.headers, "X-Forwarded-For": hit.ip}
        if hit.cookie:
            if self._sender_cookie is None:
                self._sender_cookie = self.sender_cookie()
            headers["Cookie"] = f"mb_sender={self._sender_cookie}"
        self.hits.cookies.clear()  # a hit carries a cookie only when the case says so
        req = self.hits.build_request(hit.method, self.target(m, hit))
        for name in ("user-agent", "accept", "accept-encoding"):
            req.headers.pop(name, None)  # only what the case says goes out
        req.headers.update(headers)
        r = self.hits.send(req)
        if r.headers.get("x-mailbeacon-recorded") != "yes":
            raise RuntimeError(f"{hit.case}#{hit.index} was not recorded: {r.status_code}")
        self.order.setdefault((hit.case, hit.msg), []).append(hit)

    def play(self, case: Case) -> None:
        base = self.clock.now() + CASE_GAP
        campaign = None
        steps: list[tuple[float, int, Any]] = []
        for n, msg in enumerate(case.messages):
            steps.append((base + float(msg.get("sent") or msg.get("created") or 0), -1, (n, msg)))
        starts = {
            m["key"]: base + float(m.get("sent") or m.get("created") or 0) for m in case.messages
        }
        for hit in case.hits:
            steps.append((starts[hit.msg] + hit.t, hit.index, hit))
        for when, _, step in sorted(steps, key=lambda s: (s[0], s[1])):
            self.clock.advance_to(when)
            if isinstance(step, Hit):
                self.send(step)
                continue
            if case.campaign and campaign is None:
                r = self.api.post("/api/v1/campaigns", json={"name": case.id})
                campaign = int(r.json()["id"])
            self.create(case, step[1], campaign)

    def all_events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            after = out[-1]["id"] if out else 0
            r = self.api.get("/api/v1/events", params={"after": after, "limit": 1000})
            assert r.status_code == 200, r.text
            page = r.json()
            out += page
            if len(page) < 1000:
                return out

    def labels(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Every message's events, in order, once late relabelling has stopped changing them."""
        last: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while True:
            now = self.all_events()
            if now == last or time.monotonic() > deadline:
                break
            last = now
            time.sleep(0.5)
        by_id: dict[int, list[dict[str, Any]]] = {}
        for ev in now:  # ordered by id, so each message's list is in arrival order
            by_id.setdefault(int(ev["message_id"]), []).append(ev)
        return {key: by_id.get(int(m["id"]), []) for key, m in self.sent.items()}


def outcomes(rep: Replayer) -> list[Outcome]:
    out: list[Outcome] = []
    events = rep.labels()
    for key, hits in rep.order.items():
        evs = events.get(key, [])
        for n, hit in enumerate(hits):
            ev = evs[n] if n < len(evs) else {}
            out.append(
                Outcome(
                    case=hit.case,
                    index=hit.index,
                    kind=hit.kind,
                    expected=hit.expect,
                    got=ev.get("label"),
                    reasons=tuple(ev.get("reasons") or ()),
                    note=hit.note,
                )
            )
    return sorted(out, key=lambda o: (o.case, o.index))


@dataclass
class Result:
    score: Score
    cases: int
    unsupported: list[str]
    outcomes: list[Outcome]


def run(db: str, workdir: Path, lists: dict[str, Path] | None = None) -> Result:
    cases = load()
    with eval_server(db, workdir, lists or {}) as (srv, clock):
        rep = Replayer(srv, clock)
        try:
            for case in cases:
                rep.play(case)
            got = outcomes(rep)
        finally:
            rep.close()
    return Result(score(got), len(cases), rep.unsupported, got)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.classify_eval", description=__doc__)
    p.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--lists", nargs="*", default=[], metavar="NAME=FILE")
    args = p.parse_args(argv)
    lists = {}
    for item in args.lists:
        name, _, path = item.partition("=")
        lists[name] = Path(path)
    with tempfile.TemporaryDirectory(prefix="mb-eval-") as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'eval.db'}"
        try:
            res = run(db, Path(tmp), lists)
        except (CorpusError, RuntimeError) as exc:
            print(f"classify-eval: {exc}", file=sys.stderr)
            return 2
    if args.json:
        doc = {"cases": res.cases, "unsupported": res.unsupported, **as_json(res.score)}
        print(json.dumps(doc, indent=2))
    else:
        print(f"cases: {res.cases}")
        print(render(res.score))
        for u in res.unsupported:
            print(f"not supported by this server: {u}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
