"""A private Dovecot: IMAP (plain + STARTTLS, and implicit TLS) and LMTP on loopback.

Standalone config (nothing from /etc/dovecot is read); everything lives in
`<root>/dovecot/` (config, `run/` sockets, `dovecot.log`) and `<root>/mail/`
(maildirs, `<domain>/<local>/Maildir`). Any address can receive mail (a
static userdb with allow_all_users, so Postfix delivers to whoever it
accepted); logging in over IMAP needs a password from `add_user`.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import pwd
import smtplib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from tests.mailservers import maildir
from tests.mailservers.common import (
    BIND_ATTEMPTS,
    HOST,
    MailServerError,
    TLSFiles,
    can_connect,
    dovecot_instance,
    pick_ports,
    pid_alive,
    read_pid,
    run,
    terminate_pidfile,
    terminate_pids,
    titled_pids,
    wait_until,
)
from tests.mailservers.maildir import StoredMessage

DOVECOT = "/usr/sbin/dovecot"
BINARIES = (DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/lmtp")
PACKAGES = "dovecot-imapd dovecot-lmtpd"

ImapTLS = Literal["none", "starttls", "imaps"]

# Mail is stored as `nobody`: Dovecot refuses to access mail as root (its
# first_valid_uid is 500), and the package's `dovecot` user is reserved for
# its internal processes.
MAIL_USER = "nobody"

CONFIG = """\
# Private Dovecot for mailbeacon's tests (tests/mailservers/dovecot.py).
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = {instance}
log_path = {dir}/dovecot.log
auth_verbose = yes
protocols = imap lmtp
listen = {host}
ssl = yes
ssl_cert = <{tls.cert_file}
ssl_key = <{tls.key_file}
# Plain IMAP logins are what `imap://...?tls=none` tests exercise.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
# A wrong password is answered at once: the default waits 2 s, and then
# 4, 8 and 15 s per IP (auth penalty), which would make tests of wrong
# passwords slow and order-dependent.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
# IDLE learns of new mail through inotify; if a loaded machine runs out of
# inotify instances, it falls back to polling, every 30 s by default.
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  # One file per user: Dovecot looks at a passwd-file for changes at most
  # once a second, so a user added to a shared file could not log in for up
  # to a second; a new user's new file is read at its first login.
  args = scheme=PLAIN username_format=%Lu {dir}/users/%Lu
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%Ld/%Ln allow_all_users=yes
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  # Postfix's smtpd (user postfix) authenticates SMTP clients here.
  unix_listener auth-client {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """One private Dovecot; `start()` brings it up, `stop()`/`restart()` keep its ports."""

    host = HOST

    def __init__(self, root: Path, tls: TLSFiles) -> None:
        self.dir = root / "dovecot"
        self.mail_root = root / "mail"
        self.tls = tls
        self.config = self.dir / "dovecot.conf"
        self.log_path = self.dir / "dovecot.log"
        self.lmtp_socket = self.dir / "run" / "lmtp"
        self.auth_socket = self.dir / "run" / "auth-client"
        self.imap_port = 0
        self.imaps_port = 0
        self.users: dict[str, str] = {}
        self._ids = itertools.count(1)
        entry = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.instance = dovecot_instance(root)

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        pid = read_pid(self.dir / "run" / "master.pid")
        return pid is not None and pid_alive(pid)

    def start(self) -> None:
        """Start on the ports of the last run, or on fresh ones the first time."""
        if self.running:
            return
        self.dir.mkdir(mode=0o755, exist_ok=True)
        if not self.mail_root.exists():
            self.mail_root.mkdir(mode=0o755)
            os.chown(self.mail_root, self.uid, self.gid)
        (self.dir / "users").mkdir(mode=0o755, exist_ok=True)
        fresh = self.imap_port == 0
        for _ in range(BIND_ATTEMPTS if fresh else 1):
            if fresh:
                self.imap_port, self.imaps_port = pick_ports(2)
            self._write_config()
            try:
                run([DOVECOT, "-c", str(self.config)], "starting Dovecot", self.log_path)
                break
            except MailServerError as e:
                if not fresh or "Address already in use" not in str(e):
                    raise
        else:
            raise MailServerError(f"Dovecot found no free ports in {BIND_ATTEMPTS} attempts")
        # The master binds before it forks, but log in only once it greets.
        wait_until(self._greets, "Dovecot's IMAP greeting", log=self.log_path)

    def stop(self) -> None:
        """Stop the whole instance: clients get `* BYE` and lose their connection."""
        terminate_pidfile(self.dir / "run" / "master.pid", "dovecot")
        # The master exits without its imap processes (shutdown_clients
        # notwithstanding, Dovecot 2.3.19 leaves logged-in sessions running
        # and still serving their client), so end them as a restart would.
        leftovers = titled_pids(f"dovecot-{self.instance}/")
        terminate_pids(leftovers, "Dovecot's imap processes to exit")
        wait_until(lambda: not can_connect(self.imap_port), "Dovecot's IMAP port to close")

    def restart(self) -> None:
        self.stop()
        self.start()

    def _write_config(self) -> None:
        self.config.write_text(
            CONFIG.format(
                dir=self.dir,
                mail=self.mail_root,
                host=self.host,
                tls=self.tls,
                uid=self.uid,
                gid=self.gid,
                instance=self.instance,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
            )
        )

    def _greets(self) -> bool:
        try:
            with imaplib.IMAP4(self.host, self.imap_port, timeout=5):
                return True
        except (OSError, imaplib.IMAP4.error):
            return False

    # -- users -------------------------------------------------------------

    def address(self, name: str = "user", domain: str = "example.org") -> str:
        """An address no other test of this session uses, e.g. `ana.7@example.org`."""
        return f"{name}.{next(self._ids)}@{domain}".lower()

    def add_user(self, email: str | None = None, password: str | None = None) -> tuple[str, str]:
        """Let `email` log in over IMAP (and SMTP AUTH at the private Postfix)."""
        email = (email or self.address()).lower()
        password = password or f"pw-{os.urandom(6).hex()}"
        if any(c in email + password for c in ":\n"):
            raise ValueError("passwd-file entries cannot contain ':' or newlines")
        self.users[email] = password
        # Written whole and renamed, so a lookup never sees half a file.
        entry = self.dir / "users" / email
        tmp = entry.with_name(f".{email}.tmp")
        tmp.write_text(f"{email}:{{PLAIN}}{password}\n")
        tmp.replace(entry)
        return email, password

    def imap_url(self, email: str, tls: ImapTLS = "none") -> str:
        """The URL `mailboxes add --imap` takes for this user."""
        creds = f"{quote(email, safe='')}:{quote(self.users[email.lower()], safe='')}"
        if tls == "imaps":
            return f"imaps://{creds}@{self.host}:{self.imaps_port}"
        suffix = "?tls=none" if tls == "none" else ""
        return f"imap://{creds}@{self.host}:{self.imap_port}{suffix}"

    def imap(self, email: str, tls: ImapTLS = "none") -> imaplib.IMAP4:
        """A logged-in imaplib client (use it in a `with`)."""
        if tls == "imaps":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                self.host, self.imaps_port, ssl_context=self.tls.client_context(), timeout=30
            )
        else:
            client = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
            if tls == "starttls":
                client.starttls(self.tls.client_context())
        client.login(email, self.users[email.lower()])
        return client

    # -- mail --------------------------------------------------------------

    def deliver(
        self, raw: bytes, to: str | Sequence[str], sender: str = "sender@example.com"
    ) -> None:
        """Deliver through LMTP, as Postfix does: IDLE clients hear of it."""
        recipients = [to] if isinstance(to, str) else list(to)
        with smtplib.LMTP(str(self.lmtp_socket), timeout=30) as lmtp:
            # One transaction per recipient: LMTP answers DATA once per
            # recipient, and smtplib reads only one answer.
            for rcpt in recipients:
                refused = lmtp.sendmail(sender, [rcpt], raw)
                if refused:
                    raise MailServerError(f"LMTP refused {refused}")

    def store(
        self,
        email: str,
        raws: Iterable[bytes],
        flags: Iterable[str] = (),
        mailbox: str = "INBOX",
    ) -> int:
        """Write messages straight into the maildir (for big mailboxes)."""
        home = self.home(email)
        if not home.exists():
            maildir.makedirs_owned(home, self.uid, self.gid)
        return maildir.write(maildir.folder(home, mailbox), raws, flags, self.uid, self.gid)

    def home(self, email: str) -> Path:
        local, _, domain = email.lower().rpartition("@")
        return self.mail_root / domain / local.split("+", 1)[0]

    def messages(self, email: str, mailbox: str = "INBOX") -> list[StoredMessage]:
        """What `email` has in `mailbox`, read from disk (changes nothing)."""
        return maildir.read(email.lower(), maildir.folder(self.home(email), mailbox))

    def flags(self, email: str, mailbox: str = "INBOX") -> dict[str, frozenset[str]]:
        """Maildir key -> flags, for comparing before and after."""
        return {m.key: m.flags for m in self.messages(email, mailbox)}

    def wait_for_messages(
        self, email: str, count: int = 1, timeout: float = 60, mailbox: str = "INBOX"
    ) -> list[StoredMessage]:
        """Wait until `email` has at least `count` messages; return them all."""
        found: list[StoredMessage] = []

        def enough() -> bool:
            nonlocal found
            found = self.messages(email, mailbox)
            return len(found) >= count

        wait_until(enough, f"{count} message(s) for {email}", timeout, log=self.log_path)
        return found
