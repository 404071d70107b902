"""The whole path: relay -> Postfix -> Dovecot, the recipient replies, the reply is detected.

Needs the SMTP relay (issue 14, branch h14-relay): skipped until it is
merged. `senders create` and `serve --smtp-port` are its interfaces.
"""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest

from tests.helpers import cli, free_port, rows, start_server, wait_for
from tests.mailservers import Dovecot, Postfix
from tests.replies_helpers import mail, mid

pytest.importorskip("mailbeacon.relay.server", reason="the SMTP relay (issue 14) is not merged")


def test_relay_postfix_dovecot_reply_detected(
    db_url: str, tmp_path: Path, dovecot: Dovecot, postfix: Postfix
) -> None:
    sender, _ = dovecot.add_user(dovecot.address("sender"))
    rcpt, _ = dovecot.add_user(dovecot.address("reader"))
    out = cli("senders", "create", "--email", sender, "--upstream", postfix.url("none"), db=db_url)
    smtp_password = out.stdout.strip().splitlines()[-1].split()[-1]
    smtp_port = free_port()
    srv = start_server(db_url, tmp_path, extra_args=["--smtp-port", str(smtp_port)])
    try:
        cli("mailboxes", "add", "--email", sender, "--imap", dovecot.imap_url(sender), db=db_url)
        wait_for(lambda: f":{smtp_port}" in srv.output(), "the relay to listen")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as smtp:
            smtp.login(sender, smtp_password)
            smtp.sendmail(sender, [rcpt], mail(sender, rcpt, "Proposal", message_id=mid("out"),
                                               body="Shall we talk on Monday?\n"))  # fmt: skip
        (copy,) = postfix.wait_for(rcpt)[rcpt]
        copy_id = copy.header("Message-ID")
        assert copy_id

        ((tracked_id,),) = rows(db_url, "SELECT id FROM messages WHERE recipient = ?", (rcpt,))
        tracked = {"id": int(tracked_id)}

        delivered = time.monotonic()
        with postfix.client("none") as smtp:
            smtp.sendmail(rcpt, [sender],
                          mail(rcpt, sender, "Re: Proposal", in_reply_to=copy_id,
                               references=copy_id))  # fmt: skip

        def replies() -> list[dict[str, object]]:
            return [e for e in srv.events(tracked["id"]) if e["kind"] == "reply"]

        (reply,) = wait_for(replies, "the reply to come back through Postfix and IMAP", 60)
        assert (reply["label"], reply["from"]) == ("human", rcpt)
        print(f"reply visible {time.monotonic() - delivered:.2f} s after Postfix took it")
        view = srv.api("GET", f"/api/v1/messages/{tracked['id']}").json()
        assert view["replies"] == 1 and view["replied_at"] is not None
    finally:
        srv.stop()
