"""Debian's SpamAssassin as a private spamd, for "tracking adds no rule hit" tests.

Measured on the 2-core test machine: `spamassassin -t -L` takes ~1 s a
message (it compiles every rule each time), a private spamd ~0.1 s after a
~1 s start, so a few dozen checks cost seconds instead of a minute.

Only what Debian ships is used: the rules in /usr/share/spamassassin (never
rules sa-update may have put in /var/lib/spamassassin), the package's plugin
`.pre` files, local tests only (`-L`: no DNS, no network), no Bayes, no
auto-learn, no user preferences, and a private home so nothing touches ~.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
from pathlib import Path

from tests.mailservers.common import MailServerError, tail, wait_until

SPAMD = "/usr/sbin/spamd"
BINARIES = (SPAMD,)
PACKAGES = "spamd"
DEBIAN_RULES = Path("/usr/share/spamassassin")
DEBIAN_SITE = Path("/etc/spamassassin")

LOCAL_CF = """\
# Private spamd for mailbeacon's tests: the same verdict on every run.
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
"""


class SpamAssassin:
    """A private spamd on a unix socket; `rules(raw)` scores one message."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "spamd"
        self.socket = self.dir / "spamd.sock"
        self.log_path = self.dir / "spamd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        site, home = self.dir / "site", self.dir / "home"
        site.mkdir(parents=True, exist_ok=True)
        home.mkdir(exist_ok=True)
        # The package's plugin loaders and Debian's own rules, our local.cf.
        for shipped in [*DEBIAN_SITE.glob("*.pre"), DEBIAN_SITE / "65_debian.cf"]:
            if shipped.exists() and not (site / shipped.name).exists():
                (site / shipped.name).symlink_to(shipped)
        (site / "local.cf").write_text(LOCAL_CF)
        cmd = [
            SPAMD, "-x", "-L", "-C", str(DEBIAN_RULES), f"--siteconfigpath={site}",
            f"--socketpath={self.socket}", "-r", str(self.dir / "spamd.pid"),
            "-s", str(self.log_path), "-H", str(home),
            # One check at a time per test process: 1-2 children are plenty
            # (each holds ~120 MB of compiled rules).
            "-m", "2", "--min-children=1", "--min-spare=1", "--max-spare=1",
        ]  # fmt: skip
        if os.geteuid() == 0:
            # spamd will not scan as root; nobody can read the shipped rules.
            nobody = pwd.getpwnam("nobody")
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
            cmd += ["-u", "nobody"]
        env = {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
        with (self.dir / "spamd.stderr").open("wb") as stderr:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        wait_until(self._pongs, "spamd to answer PING", log=self.log_path)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def _pongs(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            err = (self.dir / "spamd.stderr").read_text(errors="replace")
            raise MailServerError(
                f"spamd exited ({self.proc.returncode}): {err}{tail(self.log_path)}"
            )
        try:
            return b"PONG" in self._request(b"PING", b"")
        except OSError:
            return False

    def _request(self, command: bytes, body: bytes) -> bytes:
        # The spamc protocol (spamd's PROTOCOL file): a command line, headers,
        # a blank line, the message; spamd answers and closes. Spoken here
        # directly: one request, no extra client package.
        head = command + b" SPAMC/1.5\r\n"
        if body:
            head += b"Content-length: %d\r\n" % len(body)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(120)
            s.connect(str(self.socket))
            s.sendall(head + b"\r\n" + body)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def rules(self, raw: bytes) -> tuple[float, set[str]]:
        """(score, names of the rules that hit) for one raw message."""
        answer = self._request(b"SYMBOLS", raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("SPAMD/") or lines[0].split()[1] != "0":
            raise MailServerError(f"spamd refused the message: {lines[0]}{tail(self.log_path)}")
        # "Spam: False ; 1.2 / 5.0"
        spam = next(v for k, _, v in (line.partition(": ") for line in lines) if k == "Spam")
        score = float(spam.split(";")[1].split("/")[0])
        names = {n.strip() for n in body.decode("ascii").split(",") if n.strip()}
        return score, names
