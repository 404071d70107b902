"""A private Postfix: the upstream SMTP server the relay hands its copies to.

`postfix -c <root>/postfix/conf` with its own main.cf/master.cf, queue and
data directories, and its log in `<root>/postfix/maillog` (`maillog_file`:
there may be no syslog). It accepts mail for every domain and delivers it by
LMTP into the private Dovecot, so a test reads what each recipient received
from that recipient's maildir (or over IMAP).

Six smtpd listeners on loopback, one per (TLS, AUTH) combination:

| tls        | auth=False                 | auth=True                                 |
|------------|----------------------------|-------------------------------------------|
| "none"     | no STARTTLS, no AUTH       | no STARTTLS, AUTH required                |
| "starttls" | STARTTLS offered, no AUTH  | AUTH required, offered only after STARTTLS|
| "smtps"    | implicit TLS, no AUTH      | implicit TLS, AUTH required               |

AUTH checks the Dovecot users (`dovecot.add_user`). Recipients whose local
part starts with:

- `reject` are refused at RCPT with `550 5.1.1`,
- `defer` are refused at RCPT with `450 4.2.1`,
- `bounce` are accepted, then bounced: Postfix mails a DSN to the sender.
"""

from __future__ import annotations

import grp
import os
import pwd
import smtplib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from tests.mailservers.common import (
    BIND_ATTEMPTS,
    HOST,
    MailServerError,
    TLSFiles,
    can_connect,
    pick_ports,
    pid_alive,
    port_is_free,
    read_pid,
    run,
    tail,
    wait_until,
)
from tests.mailservers.dovecot import Dovecot
from tests.mailservers.maildir import StoredMessage

POSTFIX = "/usr/sbin/postfix"
MASTER = "/usr/lib/postfix/sbin/master"
BINARIES = (POSTFIX, MASTER)
POSTFIX_FILES = Path("/etc/postfix/postfix-files")  # the package's list of its files
PACKAGES = "postfix"

SmtpTLS = Literal["none", "starttls", "smtps"]
LISTENERS: tuple[tuple[SmtpTLS, bool], ...] = tuple(
    (tls, auth) for tls in ("none", "starttls", "smtps") for auth in (False, True)
)

REJECT, DEFER, BOUNCE = "reject", "defer", "bounce"

MAIN_CF = """\
# Private Postfix for mailbeacon's tests (tests/mailservers/postfix.py).
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = upstream.mailbeacon.test
mydomain = mailbeacon.test
myorigin = $myhostname
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local: every domain is a virtual mailbox domain delivered by
# LMTP into the private Dovecot.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = static:all
virtual_transport = lmtp:unix:{lmtp}
transport_maps = regexp:{conf}/transport
# smtpd would refuse at RCPT a recipient routed to the error transport (a
# check of "unlisted" recipients); bounce* ones must be accepted first, and
# every other recipient is accepted anyway.
smtpd_reject_unlisted_recipient = no
smtpd_recipient_restrictions = $mb_open_restrictions
mb_open_restrictions = check_recipient_access regexp:{conf}/recipient_access, permit
mb_auth_restrictions = check_recipient_access regexp:{conf}/recipient_access,
  permit_sasl_authenticated, reject
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth}
smtpd_tls_chain_files = {tls.key_file}, {tls.cert_file}
smtpd_tls_loglevel = 1
# Room for the relay's 25 MB attachment tests (the default is 10 MB).
message_size_limit = 104857600
# Answer at once after errors (the defaults sleep 1 s per error), so tests
# of refusals stay fast.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
# Retry deferred mail (e.g. while Dovecot restarts) within seconds, not the
# default 5 minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
# Nor wait the default 60 s before trying again a delivery agent that
# failed (qmgr) or respawning one that exited badly (master): on a loaded
# machine either stalled a retry past the tests' 60 s deadline.
transport_retry_time = 1s
service_throttle_time = 1s
biff = no
append_dot_mydomain = no
readme_directory = no
"""

MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

LISTENER_OPTIONS: dict[SmtpTLS, tuple[str, ...]] = {
    "none": ("smtpd_tls_security_level=none",),
    "starttls": ("smtpd_tls_security_level=may", "smtpd_tls_auth_only=yes"),
    "smtps": ("smtpd_tls_wrappermode=yes", "smtpd_tls_security_level=encrypt"),
}

RECIPIENT_ACCESS = f"""\
/^{REJECT}[^@]*@/  550 5.1.1 Recipient rejected by the test upstream
/^{DEFER}[^@]*@/   450 4.2.1 Recipient deferred by the test upstream, try again later
"""

TRANSPORT = f"""\
/^{BOUNCE}[^@]*@/  error:5.1.1 Mailbox unavailable at the test upstream
"""


class Postfix:
    """One private Postfix in front of a private Dovecot."""

    host = HOST

    def __init__(self, root: Path, tls: TLSFiles, dovecot: Dovecot) -> None:
        self.dir = root / "postfix"
        self.conf = self.dir / "conf"
        self.tls = tls
        self.dovecot = dovecot
        self.log_path = self.dir / "maillog"
        self.ports: dict[tuple[SmtpTLS, bool], int] = {}

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        pid = read_pid(self.dir / "queue" / "pid" / "master.pid")
        return pid is not None and pid_alive(pid)

    def start(self) -> None:
        """Start on the ports of the last run, or on fresh ones the first time."""
        if self.running:
            return
        fresh = not self.ports
        if fresh:
            self._lay_out()
        for _ in range(BIND_ATTEMPTS if fresh else 1):
            if fresh:
                self.ports = dict(zip(LISTENERS, pick_ports(len(LISTENERS)), strict=True))
                self._write_master_cf()
            # `master -w` returns once the master has bound every listener
            # (non-zero if it could not); `postfix start` would do the same
            # after ~1 s of permission checks we already did at setup.
            try:
                run([MASTER, "-c", str(self.conf), "-w"], "starting Postfix", self.log_path)
                break
            except MailServerError:
                # A bind failure is not logged (postlogd is not up yet):
                # tell it from other failures by probing our ports.
                if not fresh or all(port_is_free(p) for p in self.ports.values()):
                    raise
        else:
            raise MailServerError(f"Postfix found no free ports in {BIND_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Stop Postfix: connections are refused until `start()`; queued mail stays."""
        if self.running:
            run([POSTFIX, "-c", str(self.conf), "stop"], "stopping Postfix", self.log_path)
            wait_until(lambda: not self.running, "Postfix's master to exit", log=self.log_path)
        wait_until(
            lambda: not any(can_connect(p) for p in self.ports.values()),
            "Postfix's ports to close",
            log=self.log_path,
        )

    def _lay_out(self) -> None:
        self.conf.mkdir(mode=0o755, parents=True, exist_ok=True)
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(
                dir=self.dir,
                conf=self.conf,
                host=self.host,
                tls=self.tls,
                lmtp=self.dovecot.lmtp_socket,
                auth=self.dovecot.auth_socket,
            )
        )
        (self.conf / "recipient_access").write_text(RECIPIENT_ACCESS)
        (self.conf / "transport").write_text(TRANSPORT)
        self._write_master_cf()
        self.log_path.touch()
        self._make_queue_dirs()

    def _make_queue_dirs(self) -> None:
        """The queue and data directories with the owners and modes the
        package's postfix-files lists. `postfix check` would do it too, but
        takes 0.4 s on a quiet machine and 4 s on a loaded one (shell scripts
        that scan the whole installation)."""
        owner = pwd.getpwnam("postfix").pw_uid
        names = {"root": 0, "$mail_owner": owner}
        group = grp.getgrnam("postdrop").gr_gid
        for line in POSTFIX_FILES.read_text().splitlines():
            fields = line.split(":")
            if len(fields) < 5 or fields[1] != "d":
                continue
            path, _, user, grp_name, mode = fields[:5]
            top, _, sub = path.partition("/")
            if top not in ("$queue_directory", "$data_directory"):
                continue
            target = self.dir / top.strip("$").split("_")[0] / sub
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(int(mode, 8))
            os.chown(target, names[user], group if grp_name == "$setgid_group" else 0)

    def _write_master_cf(self) -> None:
        lines = []
        for (tls, auth), port in self.ports.items():
            options = [*LISTENER_OPTIONS[tls], f"smtpd_sasl_auth_enable={'yes' if auth else 'no'}"]
            if auth:
                options.append("smtpd_recipient_restrictions=$mb_auth_restrictions")
            lines.append(f"{self.host}:{port} inet n - n - - smtpd")
            lines += [f"  -o {o}" for o in options]
        (self.conf / "master.cf").write_text("\n".join(lines) + "\n" + MASTER_SERVICES)
        # Postfix re-reads a config file every 0.3 s until its mtime is over
        # a second old (so it never reads one half-written): backdating ours
        # saves ~2 s per start.
        past = time.time() - 60
        for path in self.conf.iterdir():
            os.utime(path, (past, past))

    # -- clients -----------------------------------------------------------

    def port(self, tls: SmtpTLS = "none", auth: bool = False) -> int:
        return self.ports[(tls, auth)]

    def url(
        self, tls: SmtpTLS = "starttls", user: str | None = None, password: str | None = None
    ) -> str:
        """The upstream URL `senders create --upstream` takes: AUTH listener
        when a user is given (password defaults to the Dovecot user's)."""
        port = self.port(tls, auth=user is not None)
        creds = ""
        if user is not None:
            password = password if password is not None else self.dovecot.users[user.lower()]
            creds = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        scheme = "smtps" if tls == "smtps" else "smtp"
        suffix = "?tls=none" if tls == "none" else ""
        return f"{scheme}://{creds}{self.host}:{port}{suffix}"

    def client(self, tls: SmtpTLS = "none", login: tuple[str, str] | None = None) -> smtplib.SMTP:
        """An smtplib client (use it in a `with`), TLS verified against the test
        CA, logged in when `login` is given (on the AUTH listener)."""
        port = self.port(tls, auth=login is not None)
        context = self.tls.client_context()
        smtp: smtplib.SMTP
        if tls == "smtps":
            smtp = smtplib.SMTP_SSL(self.host, port, context=context, timeout=30)
        else:
            smtp = smtplib.SMTP(self.host, port, timeout=30)
            if tls == "starttls":
                smtp.starttls(context=context)
        if login is not None:
            smtp.login(*login)
        return smtp

    # -- what arrived ------------------------------------------------------

    def received(self, recipient: str) -> list[StoredMessage]:
        """Everything delivered to `recipient` so far (its INBOX on disk)."""
        return self.dovecot.messages(recipient)

    def wait_for(
        self, recipients: str | Sequence[str], count: int = 1, timeout: float = 60
    ) -> dict[str, list[StoredMessage]]:
        """Wait until each recipient has `count` messages; recipient -> messages."""
        names = [recipients] if isinstance(recipients, str) else list(recipients)
        try:
            return {r: self.dovecot.wait_for_messages(r, count, timeout) for r in names}
        except MailServerError as e:
            # Dovecot's log shows what arrived; Postfix's shows why the rest did not.
            raise MailServerError(f"{e}{tail(self.log_path)}") from None

    def queue_empty(self) -> bool:
        """No message waits in Postfix's queues (all delivered or bounced)."""
        queue = self.dir / "queue"
        return not any(
            files
            for sub in ("incoming", "active", "deferred", "hold", "maildrop")
            for _, _, files in os.walk(queue / sub)
        )

    def wait_queue_empty(self, timeout: float = 60) -> None:
        """Wait until Postfix has delivered or bounced everything it accepted."""
        wait_until(self.queue_empty, "Postfix's queue to empty", timeout, log=self.log_path)
