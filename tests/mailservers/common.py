"""What the private mail servers share: their directory, ports, TLS files, waiting.

Every pytest session (each xdist worker) gets one directory under the system
temp dir, `mailbeacon-mail-XXXXXXXX/`, world-traversable (0755) because the
daemons drop root for their own users (`postfix`, `dovecot`, `dovenull`,
`nobody`) and must reach their sockets and maildirs by absolute path; pytest's
own tmp dirs are 0700 and would lock them out.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
ROOT_PREFIX = "mailbeacon-mail-"
KEEP_ENV = "MAILBEACON_KEEP_MAILSERVERS"

# Ports come from 20000-32767: below Linux's ephemeral range (32768-60999),
# so no outgoing connection or bind(port 0) of another test can be holding
# the port we pick. Postfix and Dovecot read ports from their config files,
# so they cannot bind port 0 themselves; the servers retry with fresh ports
# when a bind fails anyway (another worker picked the same one).
PORT_RANGE = (20000, 32767)
BIND_ATTEMPTS = 8

# Deadlines, not sleeps: generous because the machine may be loaded.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class MailServerError(AssertionError):
    """A private mail server did not do what a test needed; says where its log is."""


def require_root() -> None:
    """Skip the test (saying why) when the daemons cannot run here."""
    if os.geteuid() != 0:
        pytest.skip(
            "private Postfix/Dovecot need root (Postfix's master refuses to run "
            "otherwise): run the tests as root, as scripts/test does in CI"
        )


def require_binaries(binaries: Sequence[str], install: str) -> None:
    """Skip the test (saying what to install) when a daemon is missing."""
    missing = [b for b in binaries if not os.access(b, os.X_OK)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: run scripts/test, or apt-get install {install}")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count: int) -> list[int]:
    """`count` distinct ports in PORT_RANGE that nobody listens on right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(*PORT_RANGE)
        if port not in ports and port_is_free(port):
            ports.append(port)
    return ports


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = START_TIMEOUT,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise MailServerError(f"timed out after {timeout:.0f} s waiting for {what}{tail(log)}")
        time.sleep(0.02)


def can_connect(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log}:\n" + "\n".join(text)


def run(
    cmd: Sequence[str], what: str, log: Path | None = None, timeout: float = START_TIMEOUT
) -> str:
    """Run a short admin command; raise with its output (and the log) if it fails."""
    # Output goes to a file, not a pipe: daemons that fork (dovecot) keep the
    # inherited stdout open, and reading a pipe would wait for them to exit.
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        out.seek(0)
        output = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise MailServerError(
            f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{output}{tail(log)}"
        )
    return output


def pid_alive(pid: int) -> bool:
    """True while the process runs. A zombie counts as gone: daemons that
    fork away are reparented to PID 1, which may reap them late."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def terminate_pidfile(pidfile: Path, comm: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process a pidfile names if it is still the daemon we started
    (its name contains `comm`: a pid may have been reused), and wait for it."""
    pid = read_pid(pidfile)
    if pid is None or not pid_alive(pid):
        return
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return
    if comm not in name:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), f"{comm} (pid {pid}) to exit", timeout)


def titled_pids(prefix: str) -> list[int]:
    """Processes whose title (argv[0]) starts with `prefix`: Dovecot names
    its children `dovecot-<instance_name>/<service>`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(prefix.encode()) and pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def terminate_pids(pids: list[int], what: str, timeout: float = STOP_TIMEOUT) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not any(pid_alive(p) for p in pids), what, timeout)


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost.

    Clients verify against `ca_file` (`client_context()`), so tests exercise
    real verification, hostname checks included, without trusting anything
    system-wide.
    """

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    @classmethod
    def generate(cls, directory: Path) -> TLSFiles:
        directory.mkdir(mode=0o755, exist_ok=True)
        ca_key, ca = directory / "ca.key", directory / "ca.pem"
        key, cert = directory / "server.key", directory / "server.pem"
        # EC P-256: generating a key takes milliseconds, RSA-2048 up to a second.
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"]
        run(
            ["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca),
             "-subj", "/CN=mailbeacon test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            "creating the test CA",
        )  # fmt: skip
        run(
            ["openssl", "req", "-x509", *ec, "-keyout", str(key), "-out", str(cert),
             "-subj", "/CN=localhost", "-CA", str(ca), "-CAkey", str(ca_key),
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "keyUsage=critical,digitalSignature",
             "-addext", "extendedKeyUsage=serverAuth"],
            "creating the test server certificate",
        )  # fmt: skip
        return cls(ca_file=ca, cert_file=cert, key_file=key)


OWNER_FILE = "owner.pid"
# Pidfiles of the daemons a session may leave behind if pytest is killed,
# with the process name each must have.
DAEMON_PIDFILES = (
    ("dovecot/run/master.pid", "dovecot"),
    ("postfix/queue/pid/master.pid", "master"),
    ("spamd/spamd.pid", "spamd"),
)


def make_root() -> Path:
    """A fresh directory for this session's servers, after clearing what
    killed sessions left (their daemons still hold ports and memory)."""
    clear_stale_roots()
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    root.chmod(0o755)
    (root / OWNER_FILE).write_text(str(os.getpid()))
    return root


def dovecot_instance(root: Path) -> str:
    """Dovecot's instance_name for `root`: its processes are titled
    `dovecot-<instance>/<service>`, which tells them from any other Dovecot."""
    return "mailbeacon-test-" + root.name.removeprefix(ROOT_PREFIX)


def remove_root(root: Path) -> None:
    """Stop whatever daemon still runs from `root` (a server whose start
    failed halfway), then delete it unless MAILBEACON_KEEP_MAILSERVERS is set."""
    with contextlib.suppress(MailServerError):
        for pidfile, comm in DAEMON_PIDFILES:
            terminate_pidfile(root / pidfile, comm, timeout=10)
        leftovers = titled_pids(f"dovecot-{dovecot_instance(root)}/")
        terminate_pids(leftovers, "Dovecot's processes to exit", timeout=10)
    if not os.environ.get(KEEP_ENV):
        shutil.rmtree(root, ignore_errors=True)


def clear_stale_roots() -> None:
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        owner = read_pid(root / OWNER_FILE)
        if owner is not None and not pid_alive(owner):
            remove_root(root)
