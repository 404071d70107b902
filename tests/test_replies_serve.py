"""Replies through `serve` and the CLI, against the private Dovecot.

The public surface: `mailboxes add|list|remove`, /api/v1/mailboxes, reply
events in /api/v1/messages/{id}/events; a real serve process (or two).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.helpers import Server, cli, start_server, wait_for, wait_rounds
from tests.mailservers import Dovecot
from tests.replies_helpers import mail, mid


def _watch(srv: Server, dovecot: Dovecot) -> str:
    sender, _ = dovecot.add_user(dovecot.address("sender"))
    out = cli("mailboxes", "add", "--email", sender, "--imap", dovecot.imap_url(sender), db=srv.db)
    assert f"Watching {sender}" in out.stdout
    wait_for(lambda: _box(srv, sender)["state"] == "ok", "the mailbox to be watched")
    return sender


def _box(srv: Server, email: str) -> dict[str, Any]:
    r = srv.api("GET", "/api/v1/mailboxes")
    assert r.status_code == 200, r.text
    return next(b for b in r.json() if b["email"] == email)


def _replies(srv: Server, message_id: int) -> list[dict[str, Any]]:
    return [e for e in srv.events(message_id) if e["kind"] == "reply"]


def test_a_reply_shows_up_within_5_s_of_delivery(server: Server, dovecot: Dovecot) -> None:
    sender = _watch(server, dovecot)
    header = mid("live")
    msg = server.message(recipient="ana@example.com", subject="Proposal",
                         sent_at=time.time(), message_id_header=header)  # fmt: skip
    started = time.monotonic()
    dovecot.deliver(mail("Ana <ana@example.com>", sender, "Re: Proposal", in_reply_to=header),
                    sender)  # fmt: skip
    (event,) = wait_for(lambda: _replies(server, msg["id"]), "the reply in the API", 30)
    took = time.monotonic() - started
    assert (event["label"], event["from"]) == ("human", "ana@example.com")
    assert "thread:in_reply_to" in event["reasons"]
    assert took < 5.0, f"the reply took {took:.2f} s to appear"
    print(f"reply visible {took:.2f} s after delivery (IDLE)")


def test_dovecot_restart_during_idle_loses_and_repeats_nothing(
    server: Server, dovecot: Dovecot
) -> None:
    sender = _watch(server, dovecot)
    header = mid("restart")
    msg = server.message(recipient="bo@example.com", subject="Offer", message_id_header=header,
                         sent_at=time.time())  # fmt: skip
    dovecot.deliver(mail("bo@example.com", sender, "Re: Offer", in_reply_to=header), sender)
    wait_for(lambda: len(_replies(server, msg["id"])) == 1, "the first reply")
    dovecot.stop()
    wait_for(lambda: _box(server, sender)["state"] == "failing", "the watcher to notice")
    dovecot.start()
    dovecot.deliver(mail("bo@example.com", sender, "Re: Re: Offer", in_reply_to=header), sender)
    wait_for(lambda: len(_replies(server, msg["id"])) >= 2, "the reply sent while away", 60)
    wait_for(lambda: _box(server, sender)["state"] == "ok", "the mailbox to be ok again")
    assert len(_replies(server, msg["id"])) == 2
    assert "Traceback" not in server.output()


def test_wrong_password_fails_clearly_and_backs_off(server: Server, dovecot: Dovecot) -> None:
    sender, _ = dovecot.add_user(dovecot.address("wrong"))
    bad = dovecot.imap_url(sender).replace(":pw-", ":nope-", 1)
    cli("mailboxes", "add", "--email", sender, "--imap", bad, db=server.db)
    wait_for(lambda: _box(server, sender)["state"] == "failing", "the mailbox to fail")
    box = _box(server, sender)
    assert "login refused" in box["last_error"] and "mailboxes add --email" in box["last_error"]
    listed = cli("mailboxes", "list", db=server.db).stdout
    assert "failing" in listed and "login refused" in listed
    # Backing off: the next try is a minute away, and no node tries before it.
    wait_rounds(server.url, "mailboxes", 3)
    assert _box(server, sender)["failures"] == 1
    attempts = dovecot.log_path.read_text(errors="replace").count(f"user=<{sender}>")
    assert 1 <= attempts <= 2, attempts
    # The right password brings it back at once (add again replaces it).
    cli("mailboxes", "add", "--email", sender, "--imap", dovecot.imap_url(sender), db=server.db)
    wait_for(lambda: _box(server, sender)["state"] == "ok", "the fixed mailbox to be ok")


def test_cli_and_api_add_list_remove(server: Server, dovecot: Dovecot, tmp_path: Path) -> None:
    sender, password = dovecot.add_user(dovecot.address("api"))
    r = server.api("POST", "/api/v1/mailboxes",
                   json={"email": sender.upper(), "imap": dovecot.imap_url(sender)})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["email"] == sender and password not in r.text
    assert password not in cli("mailboxes", "list", db=server.db).stdout
    bad = server.api("POST", "/api/v1/mailboxes", json={"email": sender, "imap": "pop3://x"})
    assert bad.status_code == 422 and "imap://" in bad.json()["message"]
    assert server.api("DELETE", f"/api/v1/mailboxes/{sender}").status_code == 204
    assert server.api("DELETE", f"/api/v1/mailboxes/{sender}").status_code == 404
    gone = cli("mailboxes", "remove", sender, db=server.db, check=False)
    assert gone.returncode == 1 and "mailboxes list" in gone.stderr
    wrong = cli("mailboxes", "add", "--email", sender, "--imap", "imap://h", db=server.db,
                check=False)  # fmt: skip
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert re.search(r"user and a host", wrong.stderr)


def test_two_nodes_never_watch_one_mailbox_twice(
    db_url: str, tmp_path: Path, dovecot: Dovecot
) -> None:
    a = start_server(db_url, tmp_path)
    b = start_server(db_url, tmp_path, key=a.key)
    try:
        sender = _watch(a, dovecot)
        headers = [mid("two") for _ in range(5)]
        msgs = [a.message(recipient=f"r{i}@example.com", subject=f"S{i}", message_id_header=h,
                          sent_at=time.time()) for i, h in enumerate(headers)]  # fmt: skip
        for i, h in enumerate(headers):
            dovecot.deliver(mail(f"r{i}@example.com", sender, f"Re: S{i}", in_reply_to=h), sender)
        for m in msgs:
            wait_for(lambda m=m: _replies(a, m["id"]), "every reply")
        owner = _box(a, sender)["watched_by"]
        assert owner is not None
        assert all(len(_replies(b, m["id"])) == 1 for m in msgs)
        # One node logged in: the other saw the lease and left the mailbox alone.
        log = dovecot.log_path.read_text(errors="replace")
        assert log.count(f"Login: user=<{sender}>") == 1
        # A node that stops hands its mailboxes on: the other one takes over.
        holder, other = (a, b) if str(a.proc.pid) in owner else (b, a)
        holder.stop()
        late = mid("late")
        m = other.message(recipient="late@example.com", subject="Late", message_id_header=late,
                          sent_at=time.time())  # fmt: skip
        dovecot.deliver(mail("late@example.com", sender, "Re: Late", in_reply_to=late), sender)
        wait_for(lambda: _replies(other, m["id"]), "the other node to take over", 30)
        assert _box(other, sender)["watched_by"] != owner
    finally:
        a.stop()
        b.stop()


def test_a_reply_cancels_the_reminder_and_an_overdue_one_fires(
    server: Server, dovecot: Dovecot
) -> None:
    sender = _watch(server, dovecot)
    header = mid("nudge")
    waiting = server.message(recipient="gil@example.com", subject="Quote",
                             message_id_header=header, sent_at=time.time())  # fmt: skip
    body = {"message_id": waiting["id"], "if": "not_replied", "after": "3d"}
    r = server.api("POST", "/api/v1/reminders", json=body)
    assert r.status_code == 201, r.text
    # Sent four days ago, nobody answered: due already, so serve fires it now.
    overdue = server.message(recipient="hal@example.com", subject="Quote",
                             sent_at=time.time() - 4 * 86400)  # fmt: skip
    cli("remind", str(overdue["id"]), "--if", "not_replied", "--after", "3d", db=server.db)

    dovecot.deliver(mail("gil@example.com", sender, "Re: Quote", in_reply_to=header), sender)
    wait_for(lambda: _replies(server, waiting["id"]), "the reply")

    def state(message_id: int) -> tuple[str, str | None]:
        (row,) = server.api("GET", "/api/v1/reminders", params={"message_id": message_id}).json()
        return row["state"], row["reason"]

    assert state(waiting["id"]) == ("cancelled", "replied")
    wait_for(lambda: state(overdue["id"])[0] == "fired", "the overdue reminder to fire")
    kinds = [(e["kind"], e["label"]) for e in server.events(overdue["id"])]
    assert kinds == [("reminder", "not_replied")]
