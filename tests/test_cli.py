"""The command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import Lines, Server, cli, start_server


def test_keys_create_list_revoke(sqlite_url: str) -> None:
    out = cli("keys", "create", "--name", "laptop", db=sqlite_url).stdout
    key = out.strip().splitlines()[-1].split()[-1]
    assert key.startswith("mb_") and len(key) > 40
    listed = cli("keys", "list", db=sqlite_url).stdout
    assert "laptop" in listed and "active" in listed and key not in listed
    assert "revoked 1" in cli("keys", "revoke", "laptop", db=sqlite_url).stdout
    assert "revoked" in cli("keys", "list", db=sqlite_url).stdout
    bad = cli("keys", "revoke", "nobody", db=sqlite_url, check=False)
    assert bad.returncode == 1 and "keys list" in bad.stderr


def test_message_new_prints_pixel_and_links(sqlite_url: str) -> None:
    out = cli(
        "message",
        "new",
        "--to",
        "ana@example.org",
        "--subject",
        "Invoice 12",
        "--campaign",
        "November",
        "--link",
        "https://example.com/pay",
        "--base-url",
        "https://t.example.com",
        db=sqlite_url,
    ).stdout
    assert '<img src="https://t.example.com/o/' in out
    assert "https://t.example.com/c/" in out and "-> https://example.com/pay" in out
    data = json.loads(
        cli(
            "message",
            "new",
            "--to",
            "b@example.org",
            "--campaign",
            "November",
            "--json",
            db=sqlite_url,
        ).stdout
    )
    assert data["campaign_id"] is not None
    assert "November" in cli("campaign", "list", db=sqlite_url).stdout
    bad = cli(
        "message",
        "new",
        "--to",
        "x@y.z",
        "--link",
        "javascript:alert(1)",
        db=sqlite_url,
        check=False,
    )
    assert bad.returncode == 2 and "http and https" in bad.stderr


def test_events_table_and_follow(server: Server, tmp_path: Path) -> None:
    msg = server.message(links=["https://example.com/a"])
    errors = tmp_path / "follow.err"
    with errors.open("w") as err:
        follower = subprocess.Popen(
            [sys.executable, "-m", "mailbeacon", "--db", server.db, "events", "--follow", "--json"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines = Lines(follower.stdout)  # type: ignore[arg-type]
    try:
        # The follower starts after the newest event it sees, so hits sent
        # before it is up are not shown: hit until one is, within a deadline.
        line, deadline = None, time.monotonic() + 60
        while line is None and time.monotonic() < deadline and follower.poll() is None:
            httpx.get(msg["open_url"], headers={"User-Agent": "FollowMe/1.0"})
            line = lines.next(timeout=1.0)
        assert line is not None, f"events --follow printed nothing: {errors.read_text()}"
        assert json.loads(line)["user_agent"] == "FollowMe/1.0"
    finally:
        follower.kill()
        follower.wait(10)
    table = cli("events", "--message", str(msg["id"]), db=server.db).stdout
    assert "open · you · FollowMe/1.0" in table  # the API's own address: the sender


def test_rotate_signing_keeps_sent_mail_working(server: Server, tmp_path: Path) -> None:
    old = server.message(links=["https://example.com/old"])
    assert "now signs" in cli("keys", "rotate-signing", db=server.db).stdout
    server.restart()  # a restart loads the new key at once (running nodes: within 10 s)
    new = server.message(links=["https://example.com/new"])
    assert new["open_url"].split("/o/")[1][:4] != old["open_url"].split("/o/")[1][:4]
    for m in (old, new):
        assert httpx.get(m["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
        assert httpx.get(m["links"][0]["tracked_url"]).status_code == 302
    # Retiring the old key stops its links from being recorded or redirected.
    cli("keys", "signing", "--retire", "1", db=server.db)
    server.restart()
    assert httpx.get(old["open_url"]).headers["x-mailbeacon-recorded"] == "no; reason=bad_token"
    assert httpx.get(old["links"][0]["tracked_url"]).status_code == 404
    assert httpx.get(new["open_url"]).headers["x-mailbeacon-recorded"] == "yes"


@pytest.mark.process
def test_serve_first_start_prints_address_and_creates_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    env = {"MAILBEACON_DATA_DIR": str(data)}
    db = f"sqlite:///{data / 'mailbeacon.db'}"
    srv = start_server(db, tmp_path, env=env)
    try:
        assert f"listening on http://127.0.0.1:{srv.port}" in srv.output()
        assert srv.port != 0 and (data / "mailbeacon.db").exists()
        msg = srv.message()
        # --port 0 and no --base-url: links carry the port the kernel picked.
        assert msg["open_url"].startswith(f"http://127.0.0.1:{srv.port}/o/")
        assert httpx.get(msg["open_url"]).headers["x-mailbeacon-recorded"] == "yes"
    finally:
        srv.kill(signal.SIGINT)  # Ctrl-C
    assert srv.proc.returncode in (0, 130, -signal.SIGINT)  # 130: the shell convention for Ctrl-C
    assert "Application shutdown complete" in srv.output()
    assert "Traceback" not in srv.output()


@pytest.mark.process
def test_serve_on_a_busy_port_says_so_in_one_line(sqlite_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = cli("serve", "--port", str(port), db=sqlite_url, check=False, timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_help_explains_commands() -> None:
    out = cli("--help").stdout
    for word in ("serve", "keys", "message", "events", "--db"):
        assert word in out
    assert "--trust-proxy" in cli("serve", "--help").stdout


def test_unreachable_database_says_what_to_do() -> None:
    bad = cli("--db", "postgresql://postgres@127.0.0.1:1/nope", "keys", "list", check=False)
    assert bad.returncode == 2
    assert "cannot open the database" in bad.stderr and "MAILBEACON_DB" in bad.stderr
